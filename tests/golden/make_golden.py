"""Writes the golden parse fixtures: sample report bodies and the rows, values and bad rows the parser of
commit 5906b17 (the per-row Python parser, before the column-at-a-time rewrite) read from them.

    .venv/bin/python tests/golden/make_golden.py     # only to add a new sample; the outputs are the contract

tests/test_golden_parse.py checks that today's parser reads the same rows, values and bad rows from the
same bodies. Numbers are compared as decimals (12.50 == 12.5).
"""

import csv
import io
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finalesync.settings")

import django  # noqa: E402

django.setup()

from finalesync.datatypes import registry  # noqa: E402
from finalesync.datatypes.base import BadRow, Record  # noqa: E402
from finalesync.simulator.data import (  # noqa: E402
    BOM_HEADER,
    INVENTORY_HEADER,
    VENDOR_HEADER,
    Dataset,
    csv_chunks,
    orders_json_chunks,
    resolve_counts,
)


def body(preamble, header, rows) -> str:
    return "".join(csv_chunks(preamble, header, rows))


def edge_inventory() -> str:
    rows = [
        ["SKU-A", "Plain", "Tools", "Active", "1,234", "0", "", "5", "1", "0", "12", "3", "9", "$12.50", "€ 20", "Main", "A-1", "", "Acme", "No"],
        ["SKU-B", 'Quote "inch" 3/4', "Tools", "Active", "(3.5)", "-7", "+2", ".5", "0", "0", "1,000", "0", "0", "£1,234.5678", "12.", "Main", "", "", "", ""],
        ["SKU-C", "Multi\nline name", "", "", " 42 ", "0042", "1 000", "0.0001", "", "", "", "", "", "", "", "", "", "", "", ""],
        ["SKU-D", "bad stock", "", "", "lots", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
        ["SKU-E", "nan", "", "", "nan", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
        ["SKU-F", "too big", "", "", "123456789012345", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
        ["", "no key", "", "", "1", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
        ["SKU-A", "duplicate of A", "", "", "9", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
        ["SKU-G", "short row", "Tools"],
        ["SKU-H", "surplus empty", "", "", "3", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
        ["SKU-I", "surplus data", "", "", "3", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "oops"],
        [],
        ["  SKU-J  ", "  spaced  ", "x", "y", "1e5", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
        ["SKU-K", "unicode ✓ ünïcödé", "", "", "7", "", "", "", "", "", "", "", "", "99999999999999", "", "", "", "", "", "extra"],
        ["SKU-L", "trailing", "", "", "1.2.3", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
    ]  # fmt: skip
    header = ["Product ID", "Description", "Category", "Status", "Units in stock", "Units On Order", "Units Reserved",
              "ReOr point", "ReOr var", "Qty to Order", "MOQ", "Sales last 30 days", "Sales last 90 days",
              "Unit Cost", "Unit Price", "Location", "Bin", "Supplier SKU", "Primary supplier", "Lot tracking"]  # fmt: skip
    return body([["Inventory report"], [], ["Generated", "today"]], header, rows)


def edge_vendors() -> str:
    header = ["Name", "Email address 0", "Phone number 0", "Address 0 line 1", "Address 0 city", "URL",
              "Lead time (days)", "Notes", "Custom field"]  # fmt: skip
    rows = [
        ["Acme", "a@acme.test", "555", "1 Road", "Town", "https://acme.test", "7", "note, with comma", "c1"],
        ["--", "", "", "", "", "", "", "", ""],
        ["", "shifted@x.test", "", "", "", "", "", "", ""],
        [",shifted", "", "", "", "", "", "", "", ""],
        [".dot", "", "", "", "", "", "", "", ""],
        ["Beta", "", "", "", "", "", "two weeks", "", ""],
        ["Gamma", "", "", "", "", "", "", 'multi\nline "note"', ""],
        ["Delta"],
    ]
    return body([], header, rows)


def edge_boms() -> str:
    rows = [
        ["KIT-1", "Kit one", "4", "2", "SKU-1", "Bolt", "10", "", "1.50"],
        ["", "", "", "3", "SKU-2", "Nut", "20", "note", "0.25"],
        ["KIT-2", "Kit two", "1", "", "", "", "", "", ""],
        ["", "", "", "1", "SKU-3", "Washer", "5", "", ""],
        ["", "", "", "x", "SKU-4", "Bad qty", "5", "", ""],
        ["", "", "", "1", "", "No component", "5", "", ""],
        ["KIT-3", "Kit three", "", "2", "SKU-1", "Bolt", "", "", "$3"],
    ]
    return body([["Bill of materials"]], BOM_HEADER, rows)


def edge_orders() -> dict:
    return {
        "orderId": ["PO-1", "SO-1", "PO-2", "PO-3", "", "PO-5", "PO-6"],
        "orderTypeId": [
            "PURCHASE_ORDER",
            "SALES_ORDER",
            "PURCHASE_ORDER",
            "PURCHASE_ORDER",
            "PURCHASE_ORDER",
            "PURCHASE_ORDER",
            "PURCHASE_ORDER",
        ],  # fmt: skip
        "statusId": [
            "ORDER_LOCKED",
            "ORDER_CREATED",
            "ORDER_CREATED",
            "ORDER_COMPLETED",
            "ORDER_CREATED",
            "ORDER_CREATED",
            "ORDER_CREATED",
        ],  # fmt: skip
        "orderDate": [
            "2026-11-01T10:00:00",
            None,
            "2026-11-02T10:00:00Z",
            "yesterday",
            None,
            "2026-11-03T10:00:00+02:00",
            None,
        ],  # fmt: skip
        "orderRoleList": [[{"roleTypeId": "SUPPLIER", "partyId": "V1"}], [], None, [], [], "oops", []],
        "orderItemList": [
            [{"productId": "SKU-1", "quantity": 2, "unitPrice": 1.5}],
            [],
            [],
            [],
            [],
            [],
            [{"productId": "SKU-2", "quantity": "x", "unitPrice": 1}],
        ],  # fmt: skip
        "publicNotes": ["note", None, "", None, None, None, None],
    }


def samples() -> dict:
    ds = Dataset(
        7, "demo", resolve_counts(300, {"inventory": 300, "vendors": 60, "boms": 60, "purchase_orders": 80})
    )
    return {
        "inventory_sim.csv": ("inventory", body([["Inventory report"], []], INVENTORY_HEADER, ds.inventory_rows())),
        "vendors_sim.csv": ("vendors", body([], VENDOR_HEADER, ds.vendor_rows())),
        "boms_sim.csv": ("boms", body([["Bill of materials"]], BOM_HEADER, ds.bom_rows())),
        "inventory_edge.csv": ("inventory", edge_inventory()),
        "vendors_edge.csv": ("vendors", edge_vendors()),
        "boms_edge.csv": ("boms", edge_boms()),
        "orders_sim.json": ("purchase_orders", "".join(orders_json_chunks(ds, range(80), ()))),
        "orders_edge.json": ("purchase_orders", json.dumps(edge_orders())),
    }  # fmt: skip


def jsonable(value):
    if value is None or isinstance(value, (str, int, bool, list, dict)):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def parse(name: str, text: str) -> dict:
    datatype = registry.get(name)
    if name == "purchase_orders":
        source = json.loads(text)
    else:
        source = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    rows, bad = [], []
    for item in datatype.records(source):
        if isinstance(item, Record):
            values = dict(zip(datatype.fields, (jsonable(v) for v in item.values), strict=True))
            rows.append({"key": item.key, "values": values, "extra": item.extra})
        elif isinstance(item, BadRow):
            bad.append({"line": item.line, "reason": item.reason, "key": item.key})
    return {"data_type": name, "rows": rows, "bad_rows": bad}


if __name__ == "__main__":
    for filename, (name, text) in samples().items():
        (HERE / filename).write_text(text, encoding="utf-8", newline="")
        out = parse(name, text)
        (HERE / (filename.rsplit(".", 1)[0] + ".expected.json")).write_text(
            json.dumps(out, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
        )
        print(f"{filename}: {len(out['rows'])} rows, {len(out['bad_rows'])} bad")
