"""Parsing report rows into records: header detection, aliases, numbers, extras, BOM hierarchy, vendors' junk."""

import csv
import io
import json
from collections import namedtuple
from datetime import UTC, datetime

import pytest

from finalesync.datatypes import registry
from finalesync.datatypes.base import BadRow
from finalesync.errors import EmptyData, SchemaError
from finalesync.values import DecimalRule, RowError

Record = namedtuple("Record", "key values extra")
number = DecimalRule(18, 4).parse


def records(name, source):
    """Rows and bad rows in report order, as the engine reads them (a report goes through CSV bytes)."""
    datatype = registry.get(name)
    if not isinstance(source, dict):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(source)
        source = buffer.getvalue().encode()
    out = []
    for parsed in datatype.read(source):
        bad = {b.line: b for b in parsed.examples}
        for row in parsed.table.to_pylist():
            if not row["bad"]:
                values = tuple(_value(datatype, f, row[f]) for f in datatype.fields)
                out.append((row["line_no"], Record(row["natural_key"], values, json.loads(row["extra"]))))
        out += [(line, b) for line, b in bad.items()]
    return [item for _, item in sorted(out, key=lambda pair: pair[0])]


def _value(datatype, field, value):
    kind = datatype.model._meta.get_field(field).get_internal_type()
    if kind == "JSONField" and isinstance(value, str):
        return json.loads(value)
    if kind == "DateTimeField" and value:
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # SQLite keeps UTC without an offset
    return value


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1,234", "1234"),
        ("12.5", "12.5"),
        ("$1,234.50", "1234.50"),
        ("(3.5)", "-3.5"),
        ("-7", "-7"),
        ("  ", None),
        ("", None),
        ("€ 2", "2"),
    ],
)
def test_number_accepts_finale_spellings(text, expected):
    assert number(text) == expected


@pytest.mark.parametrize("text", ["abc", "1.2.3", "nan", "inf", "1e5", "12 units", "99999999999999999"])
def test_number_rejects_what_is_not_a_number(text):
    with pytest.raises(RowError):
        number(text)


def test_registry_has_the_four_types_in_operator_order():
    assert registry.NAMES == ["inventory", "vendors", "boms", "purchase_orders"]
    assert {registry.get(n).default_interval_minutes for n in registry.NAMES} == {5, 60, 15}
    with pytest.raises(KeyError, match="known: inventory"):
        registry.get("widgets")


def test_inventory_header_found_after_preamble_and_aliases_matched_case_insensitively():
    rows = [
        ["Inventory report"],
        [],
        ["product id", "  Product   Name ", "QoH units", "Unit Price", "Mystery column"],
        ["SKU-1", "Bolt", "1,200", "$3.50", "kept"],
    ]
    [rec] = records("inventory", rows)
    fields = dict(zip(registry.get("inventory").fields, rec.values, strict=True))
    assert rec.key == "SKU-1"
    assert fields["name"] == "Bolt"
    assert fields["on_hand"] == "1200"
    assert fields["unit_price"] == "3.50"
    assert fields["category"] == ""  # absent text column → empty, absent number → None
    assert fields["on_order"] is None
    assert rec.extra == {"Mystery column": "kept"}


def test_inventory_without_key_column_is_a_schema_error():
    with pytest.raises(SchemaError, match="SKU"):
        records("inventory", [["Description", "Category", "Units in stock"], ["Bolt", "x", "1"]])


def test_empty_report_is_empty_data():
    with pytest.raises(EmptyData):
        records("inventory", [[], [""]])


def test_bad_number_is_a_bad_row_that_keeps_its_key():
    rows = [["SKU", "Name", "In Stock"], ["A", "a", "12"], ["B", "b", "lots"], ["", "nameless", "1"]]
    out = records("inventory", rows)
    assert isinstance(out[0], Record)
    assert out[1] == BadRow(line=2, reason="not a number: 'lots'", key="B")
    assert isinstance(out[2], BadRow) and out[2].key is None


def test_vendor_filler_rows_are_not_vendors():
    rows = [
        ["Name", "Email address 0", "Phone number 0", "Lead time (days)"],
        ["Acme", "a@acme.test", "555", "7"],
        ["--", "", "", ""],
        ["", "shifted@x.test", "", ""],
        [",shifted", "", "", ""],
        [".dot", "", "", ""],
    ]
    out = records("vendors", rows)
    assert [r.key for r in out] == ["Acme"]


def test_bom_components_belong_to_the_last_parent_and_description_repeats():
    header = [
        "Product ID",
        "Description",
        "Potential \n Build \n Qty",
        "BOM Quantity",
        "Component Product ID",
        "Description",
        "Component Remaining",
        "Component Note",
        "BOM Average Cost",
    ]
    rows = [
        ["Bill of materials"],
        header,
        ["KIT-1", "Kit one", "4", "2", "SKU-1", "Bolt", "10", "", "1.50"],
        ["", "", "", "3", "SKU-2", "Nut", "20", "note", "0.25"],
        ["KIT-2", "Kit two", "1", "", "", "", "", "", ""],
        ["", "", "", "1", "SKU-3", "Washer", "5", "", ""],
    ]
    out = records("boms", rows)
    fields = registry.get("boms").fields
    got = [dict(zip(fields, r.values, strict=True)) for r in out]
    assert [r.key for r in out] == ["KIT-1 / SKU-1", "KIT-1 / SKU-2", "KIT-2 / SKU-3"]
    assert got[1]["parent_description"] == "Kit one" and got[1]["component_description"] == "Nut"
    assert got[1]["potential_build_qty"] == "4"
    assert got[2]["parent_product_id"] == "KIT-2"


def test_bom_component_before_any_parent_is_a_bad_row():
    header = ["Product ID", "Description", "Potential Build Qty", "BOM Quantity", "Component Product ID"]
    out = records("boms", [header, ["", "", "", "1", "SKU-9"]])
    assert isinstance(out[0], BadRow)


def test_purchase_orders_are_filtered_to_purchase_orders_and_keep_their_lines():
    collection = {
        "orderId": ["PO-1", "SO-1", "PO-2"],
        "orderTypeId": ["PURCHASE_ORDER", "SALES_ORDER", "PURCHASE_ORDER"],
        "statusId": ["ORDER_LOCKED", "ORDER_CREATED", "ORDER_CREATED"],
        "orderDate": ["2026-11-01T10:00:00", None, "2026-11-02T10:00:00Z"],
        "orderRoleList": [[{"roleTypeId": "SUPPLIER", "partyId": "V1"}], [], None],
        "orderItemList": [[{"productId": "SKU-1", "quantity": 2, "unitPrice": 1.5}], [], []],
    }
    out = records("purchase_orders", collection)
    assert [r.key for r in out] == ["PO-1", "PO-2"]
    fields = dict(zip(registry.get("purchase_orders").fields, out[0].values, strict=True))
    assert fields["supplier_party_id"] == "V1"
    assert fields["line_count"] == 1 and fields["total_amount"] == "3.0000"
    assert fields["lines"][0]["productId"] == "SKU-1"
    assert fields["order_date"] == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def test_unequal_order_arrays_are_malformed_not_zero_orders():
    from finalesync.errors import MalformedData

    with pytest.raises(MalformedData, match="unequal"):
        records("purchase_orders", {"orderId": ["PO-1", "PO-2"], "orderTypeId": ["PURCHASE_ORDER"]})


def test_order_collection_without_order_id_is_a_schema_error():
    with pytest.raises(SchemaError):
        records("purchase_orders", {"orderTypeId": ["PURCHASE_ORDER"]})
