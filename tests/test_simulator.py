"""The Finale simulator over real HTTP on loopback: the surface of finale-api.md, determinism, sizes, every
fault, mutations and the control endpoints. No database is used."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import socket
import struct
import time
import zlib
from datetime import datetime

import pytest
import requests

from finalesync.simulator import (
    BOM_HEADER,
    BOM_HEADER_ALT,
    FAULT_KINDS,
    HTTP_FAULTS,
    INVENTORY_HEADER,
    INVENTORY_HEADER_ALT,
    JUNK_VENDOR_ROWS,
    ORDER_FIELDS,
    VENDOR_HEADER,
    VENDOR_HEADER_ALT,
    FinaleSimulator,
)

CSV_TYPES = ("inventory", "vendors", "boms")
KEY_COLUMN = {"inventory": "Product ID", "vendors": "Name", "boms": "Product ID"}
HEADERS = {"inventory": INVENTORY_HEADER, "vendors": VENDOR_HEADER, "boms": BOM_HEADER}
TIMEOUT = 10


@pytest.fixture
def fsim():
    with FinaleSimulator(port=0, rows=200, seed=11, slow_seconds=2.0) as simulator:
        yield simulator


def get(sim: FinaleSimulator, data_type: str, **kwargs) -> requests.Response:
    url = sim.orders_url if data_type == "purchase_orders" else sim.report_url(data_type)
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.get(url, auth=(sim.api_key, sim.api_secret), **kwargs)


def parse_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def split_report(rows: list[list[str]], header: list[str]) -> tuple[list[str], list[list[str]]]:
    """Return (header, data rows): the header is the first row equal to `header` (after the preamble)."""
    for n, row in enumerate(rows):
        if row == header:
            return row, rows[n + 1 :]
    raise AssertionError(f"header {header[:3]}... not found in {rows[:3]}")


def orders_filter(spec: dict) -> dict:
    return {"filter": base64.b64encode(json.dumps(spec).encode()).decode()}


# --- surface -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data_type", [*CSV_TYPES, "purchase_orders"])
def test_every_finale_url_requires_the_key_and_secret(fsim, data_type):
    url = fsim.orders_url if data_type == "purchase_orders" else fsim.report_url(data_type)
    assert requests.get(url, timeout=TIMEOUT).status_code == 401
    assert requests.get(url, auth=(fsim.api_key, "wrong"), timeout=TIMEOUT).status_code == 401
    assert requests.get(url, auth=("wrong", fsim.api_secret), timeout=TIMEOUT).status_code == 401
    assert get(fsim, data_type).status_code == 200
    assert fsim.requests_served[data_type] == 4


def test_unknown_account_or_report_id_is_404(fsim):
    auth = (fsim.api_key, fsim.api_secret)
    wrong_account = fsim.report_url("inventory").replace("/demo/", "/other/")
    wrong_report = fsim.report_url("inventory").replace("/100001/", "/999999/")
    assert requests.get(wrong_account, auth=auth, timeout=TIMEOUT).status_code == 404
    assert requests.get(wrong_report, auth=auth, timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{fsim.base_url}/other/api/order/", auth=auth, timeout=TIMEOUT).status_code == 404


def test_report_is_streamed_utf8_csv_with_bom_and_crlf(fsim):
    r = get(fsim, "inventory")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in r.headers
    assert r.content.startswith(b"\xef\xbb\xbfInventory report\r\n\r\nProduct ID,Description,")
    assert r.content.endswith(b"\r\n")
    text = r.content.decode("utf-8-sig")
    # Names with commas and embedded quotes come out quoted, the csv way.
    assert '"' in text and ',"' in text
    rows = parse_csv(r.content)
    header, data = split_report(rows, INVENTORY_HEADER)
    assert rows[0] == ["Inventory report"] and rows[1] == []
    assert any("," in row[1] for row in data)
    assert any('"' in row[1] for row in data)
    assert all(len(row) == len(header) for row in data)


def test_inventory_values_look_like_finale(fsim):
    _, data = split_report(parse_csv(get(fsim, "inventory").content), INVENTORY_HEADER)
    skus = [row[0] for row in data]
    assert skus[:2] == ["SKU-000000", "SKU-000001"] and len(set(skus)) == len(skus)
    col = {name: n for n, name in enumerate(INVENTORY_HEADER)}
    assert {row[col["Status"]] for row in data} == {"Active", "Inactive"}
    stock = [row[col["Units in stock"]] for row in data]
    assert "" in stock and any("," in s for s in stock)
    assert any(row[col["Unit Cost"]].startswith("$") for row in data)
    vendor_names = {row[0] for row in split_report(parse_csv(get(fsim, "vendors").content), VENDOR_HEADER)[1]}
    suppliers = {row[col["Primary supplier"]] for row in data} - {""}
    assert suppliers and suppliers <= vendor_names


@pytest.mark.parametrize("data_type", CSV_TYPES)
def test_report_sizes_honour_the_configured_counts(data_type):
    counts = {"inventory": 321, "vendors": 17, "boms": 40, "purchase_orders": 33}
    with FinaleSimulator(seed=5, counts=counts) as sim:
        _, data = split_report(parse_csv(get(sim, data_type).content), HEADERS[data_type])
        expected = {"inventory": 321, "vendors": 17 + JUNK_VENDOR_ROWS, "boms": sim.data_rows("boms")}
        assert len(data) == expected[data_type] == sim.data_rows(data_type)
        orders = get(sim, "purchase_orders").json()
        assert len(orders["orderId"]) == 33


def test_default_sizes_derive_from_rows():
    sim = FinaleSimulator(rows=1000)
    assert sim.counts == {"inventory": 1000, "vendors": 50, "boms": 100, "purchase_orders": 100}
    assert FinaleSimulator(rows=10).counts == {"inventory": 10, "vendors": 3, "boms": 2, "purchase_orders": 5}


def test_same_seed_gives_byte_identical_bodies_and_another_seed_does_not():
    bodies = []
    for seed in (3, 3, 4):
        with FinaleSimulator(rows=300, seed=seed) as sim:
            bodies.append([get(sim, t).content for t in (*CSV_TYPES, "purchase_orders")])
    assert bodies[0] == bodies[1]
    assert all(a != b for a, b in zip(bodies[0], bodies[2], strict=True))


def test_rows_stay_the_same_when_the_data_set_grows():
    with FinaleSimulator(seed=9, counts={"inventory": 50, "vendors": 10}) as small:
        few = parse_csv(get(small, "inventory").content)
    with FinaleSimulator(seed=9, counts={"inventory": 500, "vendors": 10}) as big:
        many = parse_csv(get(big, "inventory").content)
    assert many[: len(few)] == few


def test_vendor_report_has_unique_names_and_two_junk_rows(fsim):
    rows = parse_csv(get(fsim, "vendors").content)
    assert rows[0] == VENDOR_HEADER  # no preamble on vendors
    names = [row[0] for row in rows[1:]]
    real = [n for n in names if n not in ("", "--")]
    assert names.count("--") == 1 and names.count("") == 1
    assert len(real) == len(set(real)) == fsim.counts["vendors"]
    state = requests.get(f"{fsim.base_url}/_sim/state", timeout=TIMEOUT).json()
    assert state["junk_rows"] == JUNK_VENDOR_ROWS == 2


def test_bom_header_has_multiline_cell_and_two_description_columns(fsim):
    rows = parse_csv(get(fsim, "boms").content)
    assert rows[0] == ["Bill of materials"]
    header = rows[1]
    assert header == BOM_HEADER
    assert "\n" in header[2] and " ".join(header[2].split()) == "Potential Build Qty"
    assert header.count("Description") == 2


def test_bom_rows_are_hierarchical_with_unique_inventory_components(fsim):
    _, data = split_report(parse_csv(get(fsim, "boms").content), BOM_HEADER)
    inventory = {
        row[0] for row in split_report(parse_csv(get(fsim, "inventory").content), INVENTORY_HEADER)[1]
    }
    assert data[0][0], "the first line must name its parent"
    keys, parents, parent = set(), set(), None
    for row in data:
        if row[0]:
            parent = row[0]
            assert row[1] and row[2] and parent not in parents
            parents.add(parent)
        else:
            assert row[:3] == ["", "", ""]
        assert row[4] in inventory and parent in inventory and row[4] != parent
        assert (parent, row[4]) not in keys
        keys.add((parent, row[4]))
    assert len(parents) == fsim.counts["boms"]
    assert len(keys) == len(data) > len(parents)


def test_orders_are_column_major_with_equal_arrays_and_every_type_even_when_filtered_by_type(fsim):
    r = get(
        fsim, "purchase_orders", params=orders_filter({"orderTypeId": ["PURCHASE_ORDER", "PURCHASE_ORDER"]})
    )
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    orders = r.json()
    assert list(orders) == list(ORDER_FIELDS)
    assert {len(v) for v in orders.values()} == {fsim.counts["purchase_orders"]}
    assert set(orders["orderTypeId"]) == {"PURCHASE_ORDER", "SALES_ORDER", "TRANSFER_ORDER"}
    assert set(orders["statusId"]) <= {"ORDER_CREATED", "ORDER_LOCKED", "ORDER_COMPLETED", "ORDER_CANCELLED"}
    assert len(set(orders["orderId"])) == len(orders["orderId"])
    for oid, url in zip(orders["orderId"], orders["orderUrl"], strict=True):
        assert url == f"/demo/api/order/{oid}"
    for value in orders["lastUpdatedDate"]:
        datetime.fromisoformat(value)
    for otype, roles, items in zip(
        orders["orderTypeId"], orders["orderRoleList"], orders["orderItemList"], strict=True
    ):
        assert 1 <= len(items) <= 8
        assert all(item["productId"].startswith("SKU-") and item["quantity"] > 0 for item in items)
        if otype == "PURCHASE_ORDER":
            assert roles[0]["roleTypeId"] == "SUPPLIER" and roles[0]["partyId"]


def test_orders_last_updated_filter_selects_a_window_and_rejects_more_than_30_days(fsim):
    window = ["2026-10-01T00:00:00", "2026-10-30T00:00:00"]
    orders = get(fsim, "purchase_orders", params=orders_filter({"lastUpdatedDate": window})).json()
    everything = get(fsim, "purchase_orders").json()
    inside = [d for d in everything["lastUpdatedDate"] if window[0] <= d <= window[1]]
    assert sorted(orders["lastUpdatedDate"]) == sorted(inside) and inside
    too_wide = orders_filter({"lastUpdatedDate": ["2026-01-01T00:00:00", "2026-03-01T00:00:00"]})
    r = get(fsim, "purchase_orders", params=too_wide)
    assert r.status_code == 400 and "30 days" in r.text
    assert get(fsim, "purchase_orders", params={"filter": "%%not-base64"}).status_code == 400


# --- faults --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data_type", ["inventory", "purchase_orders"])
@pytest.mark.parametrize("kind", sorted(HTTP_FAULTS))
def test_http_fault_returns_that_status_with_a_short_body(fsim, data_type, kind):
    fsim.set_fault(data_type, kind)
    r = get(fsim, data_type)
    assert r.status_code == HTTP_FAULTS[kind]
    assert 0 < len(r.content) < 500
    assert (r.headers.get("Retry-After") == "120") == (kind == "http_429")


def test_fault_on_one_type_leaves_the_others_alone(fsim):
    fsim.set_fault("inventory", "http_500")
    assert get(fsim, "inventory").status_code == 500
    assert get(fsim, "vendors").status_code == 200
    fsim.clear_faults("inventory")
    assert get(fsim, "inventory").status_code == 200


@pytest.mark.parametrize("data_type", ["inventory", "purchase_orders"])
def test_slow_fault_trips_a_client_read_timeout(fsim, data_type):
    fsim.set_fault(data_type, "slow")
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        get(fsim, data_type, timeout=(2, 0.5))
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("data_type", [*CSV_TYPES, "purchase_orders"])
def test_reset_fault_breaks_the_body_after_the_headers(fsim, data_type):
    fsim.set_fault(data_type, "reset")
    r = get(fsim, data_type, stream=True)
    assert r.status_code == 200
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        r.content  # noqa: B018 - reading the body is the point


@pytest.mark.parametrize("data_type", CSV_TYPES)
def test_truncated_fault_ends_inside_a_row_of_a_complete_response(fsim, data_type):
    fsim.set_fault(data_type, "truncated")
    r = get(fsim, data_type)
    assert r.status_code == 200  # the chunked response itself ended properly
    text = r.content.decode("utf-8-sig")
    assert not text.endswith("\r\n")
    last = text[text.rfind("\r\n") + 2 :]
    unterminated_quote = last.count('"') % 2 == 1
    assert unterminated_quote or len(next(csv.reader([last]))) < len(HEADERS[data_type])
    assert len(parse_csv(r.content)) < fsim.data_rows(data_type)


def test_truncated_inventory_is_cut_inside_a_quoted_field(fsim):
    fsim.set_fault("inventory", "truncated")
    text = get(fsim, "inventory").content.decode("utf-8-sig")
    assert text[text.rfind("\r\n") + 2 :].count('"') % 2 == 1


def test_truncated_orders_are_not_valid_json(fsim):
    fsim.set_fault("purchase_orders", "truncated")
    r = get(fsim, "purchase_orders")
    assert r.status_code == 200 and r.content.startswith(b'{"orderId": [')
    with pytest.raises(ValueError):
        json.loads(r.content)


@pytest.mark.parametrize("data_type", [*CSV_TYPES, "purchase_orders"])
def test_empty_fault_is_a_200_with_no_body(fsim, data_type):
    fsim.set_fault(data_type, "empty")
    r = get(fsim, data_type)
    assert r.status_code == 200 and r.content == b"" and r.headers["Content-Length"] == "0"


@pytest.mark.parametrize("data_type", CSV_TYPES)
def test_header_only_fault_has_the_header_and_no_rows(fsim, data_type):
    fsim.set_fault(data_type, "header_only")
    rows = parse_csv(get(fsim, data_type).content)
    assert rows[-1] == HEADERS[data_type]


def test_header_only_orders_have_every_key_and_empty_arrays(fsim):
    fsim.set_fault("purchase_orders", "header_only")
    assert get(fsim, "purchase_orders").json() == {f: [] for f in ORDER_FIELDS}


@pytest.mark.parametrize("data_type", [*CSV_TYPES, "purchase_orders"])
def test_html_fault_is_a_login_page_with_status_200(fsim, data_type):
    fsim.set_fault(data_type, "html")
    r = get(fsim, data_type)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert r.text.startswith("<!DOCTYPE html>") and "Sign in" in r.text and "password" in r.text


@pytest.mark.parametrize("data_type", CSV_TYPES)
def test_missing_column_fault_drops_the_key_column_only(fsim, data_type):
    fsim.set_fault(data_type, "missing_column")
    rows = parse_csv(get(fsim, data_type).content)
    header, data = split_report(rows, HEADERS[data_type][1:])
    assert KEY_COLUMN[data_type] not in header[:1] and KEY_COLUMN[data_type] != header[0]
    assert len(data) == fsim.data_rows(data_type)
    assert all(len(row) == len(header) for row in data)


def test_missing_column_orders_have_no_order_id(fsim):
    fsim.set_fault("purchase_orders", "missing_column")
    orders = get(fsim, "purchase_orders").json()
    assert "orderId" not in orders and list(orders) == list(ORDER_FIELDS[1:])


@pytest.mark.parametrize("data_type", [*CSV_TYPES, "purchase_orders"])
def test_garbage_fault_is_binary_junk_with_status_200(fsim, data_type):
    fsim.set_fault(data_type, "garbage")
    r = get(fsim, data_type)
    assert r.status_code == 200 and len(r.content) == 64 * 1024 and b"\x00" in r.content
    with pytest.raises(UnicodeDecodeError):
        r.content.decode("utf-8")


def rows_by_key(sim, data_type):
    header, data = split_report(parse_csv(get(sim, data_type).content), sim.header(data_type))
    return {row[0]: row for row in data}


def test_renamed_stock_column_fault_changes_only_that_header(fsim):
    clean = parse_csv(get(fsim, "inventory").content)
    fsim.set_fault("inventory", "renamed_stock_column")
    renamed = parse_csv(get(fsim, "inventory").content)
    header = INVENTORY_HEADER.copy()
    header[4] = "Stock (all locations)"
    _, data = split_report(renamed, header)
    assert "Units in stock" not in renamed[2] and data == split_report(clean, INVENTORY_HEADER)[1]


def test_blank_stock_column_fault_empties_every_stock_cell_and_nothing_else(fsim):
    clean = rows_by_key(fsim, "inventory")
    fsim.set_fault("inventory", "blank_stock_column")
    blank = rows_by_key(fsim, "inventory")
    assert blank.keys() == clean.keys()
    assert {row[4] for row in blank.values()} == {""} and any(row[4] for row in clean.values())
    assert all(blank[k][:4] + blank[k][5:] == clean[k][:4] + clean[k][5:] for k in clean)


@pytest.mark.parametrize("kind", ["renamed_stock_column", "blank_stock_column", "nan_json"])
def test_type_specific_faults_are_refused_elsewhere(fsim, kind):
    other = "vendors" if kind != "nan_json" else "inventory"
    with pytest.raises(ValueError, match="applies only to"):
        fsim.set_fault(other, kind)


def raw_get(sim, path: str) -> tuple[bytes, bytes]:
    """GET over a bare socket: (response head, body up to the server's close). Shows the framing as sent."""
    auth = base64.b64encode(f"{sim.api_key}:{sim.api_secret}".encode())
    port = int(sim.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n\r\n" % (path.encode(), auth))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.lower(), body


@pytest.mark.parametrize("data_type", CSV_TYPES)
def test_cut_close_delimited_fault_ends_at_a_line_break_without_framing(fsim, data_type):
    fsim.set_fault(data_type, "cut_close_delimited")
    url = fsim.report_url(data_type)
    head, body = raw_get(fsim, url[len(fsim.base_url) :])
    assert b"content-length" not in head and b"transfer-encoding" not in head
    assert body.endswith(b"\r\n")
    _, data = split_report(parse_csv(body), HEADERS[data_type])
    assert len(data) == math.ceil(fsim.data_rows(data_type) * 0.75)


def test_cut_close_delimited_orders_are_valid_json_with_three_quarters_of_the_orders(fsim):
    fsim.set_fault("purchase_orders", "cut_close_delimited")
    head, body = raw_get(fsim, fsim.orders_url[len(fsim.base_url) :])
    assert b"content-length" not in head and b"transfer-encoding" not in head
    orders = json.loads(body)
    assert len(orders["orderId"]) == math.ceil(fsim.counts["purchase_orders"] * 0.75)
    assert len({len(v) for v in orders.values()}) == 1


def test_unstorable_cells_fault_puts_three_bad_inventory_values_among_good_rows(fsim):
    clean = rows_by_key(fsim, "inventory")
    fsim.set_fault("inventory", "unstorable_cells")
    bad = rows_by_key(fsim, "inventory")
    arabic, cost, digits = fsim.unstorable_keys("inventory")
    assert bad[arabic][4] == "\u0661\u0662\u0663"
    assert bad[cost][13] == "99999999999999.99999"
    assert len(bad[digits][4]) == 41 and bad[digits][4].isdigit()
    assert bad.keys() == clean.keys()
    assert sum(bad[k] != clean[k] for k in clean) == 3


@pytest.mark.parametrize("data_type", ["vendors", "boms"])
def test_unstorable_cells_fault_puts_a_nul_and_an_overlong_key_in_a_report(fsim, data_type):
    clean = parse_csv(get(fsim, data_type).content)
    fsim.set_fault(data_type, "unstorable_cells")
    rows = parse_csv(get(fsim, data_type).content)
    assert len(rows) == len(clean) + 1
    assert sum("\x00" in cell for row in rows for cell in row) == 1
    nul_row = next(row for row in rows if any("\x00" in cell for cell in row))
    key_cell = 0 if data_type == "vendors" else 4
    assert "\x00" not in nul_row[key_cell]
    assert max(len(row[key_cell]) for row in rows if len(row) > key_cell) == 300
    keys = fsim.unstorable_keys(data_type)
    if data_type == "vendors":
        assert nul_row[0] == keys[0] and any(row[0] == keys[1] for row in rows)
    else:
        assert nul_row[4] == keys[0][1] and len(keys[1][1]) == 300


def test_unstorable_cells_fault_gives_two_purchase_orders_bad_values(fsim):
    fsim.set_fault("purchase_orders", "unstorable_cells")
    orders = get(fsim, "purchase_orders").json()
    status_id, date_id = fsim.unstorable_keys("purchase_orders")
    by_id = {oid: n for n, oid in enumerate(orders["orderId"])}
    assert len(orders["statusId"][by_id[status_id]]) == 126
    assert orders["orderTypeId"][by_id[status_id]] == "PURCHASE_ORDER"
    with pytest.raises(ValueError):
        datetime.fromisoformat(orders["orderDate"][by_id[date_id]])
    assert sum(len(s) > 50 for s in orders["statusId"]) == 1


def test_nan_json_fault_puts_a_bare_nan_in_an_order_quantity(fsim):
    fsim.set_fault("purchase_orders", "nan_json")
    text = get(fsim, "purchase_orders").text
    assert text.count("NaN") == 1
    orders = json.loads(text)  # Python's json reads NaN; a strict client must not
    quantities = [item["quantity"] for items in orders["orderItemList"] for item in items]
    assert sum(q != q for q in quantities) == 1


@pytest.mark.parametrize("data_type", [*CSV_TYPES, "purchase_orders"])
def test_gzip_bomb_fault_is_a_megabyte_that_inflates_to_a_gibibyte_line(fsim, data_type):
    fsim.set_fault(data_type, "gzip_bomb")
    r = get(fsim, data_type, stream=True)
    assert r.headers["Content-Encoding"] == "gzip"
    compressed = r.raw.read(decode_content=False)
    assert len(compressed) < 1_200_000 and int(r.headers["Content-Length"]) == len(compressed)
    assert struct.unpack("<I", compressed[-4:])[0] == (1 << 30) % (1 << 32)
    start = zlib.decompressobj(31).decompress(compressed, 4 << 20)
    if data_type == "purchase_orders":
        assert start.startswith(b'{"orderId": ["AAAA')
    else:
        header_end = start.index(b"\r\n") + 2
        assert start[header_end:] == b"A" * (len(start) - header_end)  # no line break after the header


def test_drip_fault_keeps_sending_a_few_bytes_within_any_read_timeout(fsim):
    fsim.set_fault("inventory", "drip")
    started = time.monotonic()
    pieces = []
    with get(fsim, "inventory", stream=True, timeout=(2, 1.0)) as r:
        for piece in r.iter_content(chunk_size=None):
            pieces.append(piece)
            if time.monotonic() - started > 1.8:
                break
    assert 3 <= len(pieces) <= 6 and all(0 < len(p) <= 16 for p in pieces)
    assert b"".join(pieces).decode("utf-8-sig").startswith("Inventory report")


def test_empty_fault_object_clears_every_fault(fsim):
    fsim.set_fault("inventory", "http_500")
    fsim.set_fault("purchase_orders", "nan_json")
    r = requests.post(f"{fsim.base_url}/_sim/faults", json={}, timeout=TIMEOUT)
    assert r.status_code == 200 and set(r.json()["faults"].values()) == {None}
    assert get(fsim, "inventory").status_code == 200


@pytest.mark.parametrize(
    "data_type, header",
    [("inventory", INVENTORY_HEADER_ALT), ("vendors", VENDOR_HEADER_ALT), ("boms", BOM_HEADER_ALT)],
)
def test_alt_spellings_change_the_header_and_nothing_else(fsim, data_type, header):
    standard = parse_csv(get(fsim, data_type).content)
    requests.post(f"{fsim.base_url}/_sim/spellings", json={"spellings": "alt"}, timeout=TIMEOUT)
    alt = parse_csv(get(fsim, data_type).content)
    assert split_report(alt, header)[1] == split_report(standard, HEADERS[data_type])[1]
    assert header != HEADERS[data_type] and len(header) == len(HEADERS[data_type])
    assert fsim.state()["spellings"] == "alt"
    with pytest.raises(ValueError, match="valid: standard, alt"):
        fsim.set_spellings("british")


def test_drop_60_fault_serves_about_40_percent_of_the_same_rows():
    with FinaleSimulator(rows=2000, seed=2, counts={"boms": 300}) as sim:
        full = split_report(parse_csv(get(sim, "inventory").content), INVENTORY_HEADER)[1]
        full_boms = split_report(parse_csv(get(sim, "boms").content), BOM_HEADER)[1]
        full_orders = get(sim, "purchase_orders").json()
        for t in ("inventory", "boms", "purchase_orders"):
            sim.set_fault(t, "drop_60")
        part = split_report(parse_csv(get(sim, "inventory").content), INVENTORY_HEADER)[1]
        part_boms = split_report(parse_csv(get(sim, "boms").content), BOM_HEADER)[1]
        part_orders = get(sim, "purchase_orders").json()
    assert 0.3 < len(part) / len(full) < 0.5
    assert all(row in full for row in part[:50])
    assert 0.25 < sum(1 for r in part_boms if r[0]) / sum(1 for r in full_boms if r[0]) < 0.55
    assert 0.25 < len(part_orders["orderId"]) / len(full_orders["orderId"]) < 0.55
    assert set(part_orders["orderId"]) < set(full_orders["orderId"])


def test_unequal_arrays_fault_makes_one_order_array_shorter(fsim):
    fsim.set_fault("purchase_orders", "unequal_arrays")
    lengths = {k: len(v) for k, v in get(fsim, "purchase_orders").json().items()}
    assert sorted(set(lengths.values())) == [
        fsim.counts["purchase_orders"] - 1,
        fsim.counts["purchase_orders"],
    ]
    assert list(lengths.values()).count(fsim.counts["purchase_orders"] - 1) == 1


@pytest.mark.parametrize("data_type", CSV_TYPES)
def test_unequal_arrays_cannot_be_set_on_a_report(fsim, data_type):
    with pytest.raises(ValueError, match="only to purchase_orders"):
        fsim.set_fault(data_type, "unequal_arrays")


def test_unknown_fault_kind_or_type_is_refused_with_the_valid_choices(fsim):
    with pytest.raises(ValueError, match="valid kinds: http_401"):
        fsim.set_fault("inventory", "http_418")
    with pytest.raises(ValueError, match="valid types: inventory"):
        fsim.set_fault("products", "http_500")
    assert "drop_60" in FAULT_KINDS and "drip" in FAULT_KINDS and len(FAULT_KINDS) == 25


# --- mutations -----------------------------------------------------------------------------------------------
def test_mutate_changes_about_ratio_of_inventory_rows_and_keeps_keys():
    with FinaleSimulator(rows=4000, seed=8) as sim:
        before = split_report(parse_csv(get(sim, "inventory").content), INVENTORY_HEADER)[1]
        assert sim.mutate("inventory", ratio=0.1) == 1
        after = split_report(parse_csv(get(sim, "inventory").content), INVENTORY_HEADER)[1]
    assert [r[0] for r in before] == [r[0] for r in after]
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert 0.08 < len(changed) / len(before) < 0.12
    stock, cost = INVENTORY_HEADER.index("Units in stock"), INVENTORY_HEADER.index("Unit Cost")
    assert all(a[stock] != b[stock] and a[cost] != b[cost] for a, b in changed)
    assert all(a[1] == b[1] for a, b in changed)  # descriptions are not what changes


def test_mutate_changes_vendor_phone_and_notes_and_bom_quantities(fsim):
    vendors_before = parse_csv(get(fsim, "vendors").content)
    boms_before = parse_csv(get(fsim, "boms").content)
    fsim.mutate("vendors", ratio=0.5)
    fsim.mutate("boms", ratio=0.5)
    vendors_after = parse_csv(get(fsim, "vendors").content)
    boms_after = parse_csv(get(fsim, "boms").content)
    changed_vendors = [(a, b) for a, b in zip(vendors_before, vendors_after, strict=True) if a != b]
    assert changed_vendors and all(
        a[0] == b[0] and a[3] != b[3] and a[11] != b[11] for a, b in changed_vendors
    )
    changed_lines = [(a, b) for a, b in zip(boms_before, boms_after, strict=True) if a != b]
    assert changed_lines and all(a[4] == b[4] and a[3] != b[3] for a, b in changed_lines)


def test_mutated_orders_get_a_new_status_and_last_updated_date(fsim):
    before = get(fsim, "purchase_orders").json()
    fsim.mutate("purchase_orders", ratio=0.3, at="2026-11-20T10:00:00")
    after = get(fsim, "purchase_orders").json()
    assert after["orderId"] == before["orderId"]
    changed = [n for n, d in enumerate(after["lastUpdatedDate"]) if d == "2026-11-20T10:00:00"]
    assert changed
    for n in changed:
        assert after["statusId"][n] != before["statusId"][n]
        assert [i["productId"] for i in after["orderItemList"][n]] == [
            i["productId"] for i in before["orderItemList"][n]
        ]
        assert after["orderItemList"][n] != before["orderItemList"][n]
    recent = get(
        fsim, "purchase_orders", params=orders_filter({"lastUpdatedDate": ["2026-11-15T00:00:00", None]})
    ).json()
    assert sorted(recent["orderId"]) == sorted(after["orderId"][n] for n in changed)


def test_mutations_are_deterministic_and_reset_restores_the_original():
    bodies = []
    for _ in range(2):
        with FinaleSimulator(rows=300, seed=4) as sim:
            original = get(sim, "inventory").content
            sim.mutate("inventory", ratio=0.05)
            sim.mutate("purchase_orders", ratio=0.2, at="2026-11-21T08:00:00")
            bodies.append((get(sim, "inventory").content, get(sim, "purchase_orders").content))
            sim.reset()
            assert get(sim, "inventory").content == original
    assert bodies[0] == bodies[1] and bodies[0][0] != original


# --- control endpoints ---------------------------------------------------------------------------------------
def test_control_endpoints_show_state_and_flip_faults_and_versions(fsim):
    base = fsim.base_url
    state = requests.get(f"{base}/_sim/state", timeout=TIMEOUT).json()
    assert state["faults"] == dict.fromkeys(("inventory", "vendors", "boms", "purchase_orders"))
    assert state["counts"] == fsim.counts and state["versions"]["inventory"] == 0

    r = requests.post(f"{base}/_sim/faults", json={"inventory": "http_503", "boms": "empty"}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["faults"]["inventory"] == "http_503"
    assert get(fsim, "inventory").status_code == 503
    requests.post(f"{base}/_sim/faults", json={"inventory": None}, timeout=TIMEOUT)
    assert get(fsim, "inventory").status_code == 200 and fsim.faults["boms"] == "empty"

    bad = requests.post(
        f"{base}/_sim/faults", json={"inventory": "melt", "vendors": "empty"}, timeout=TIMEOUT
    )
    assert bad.status_code == 400 and "valid kinds" in bad.json()["error"]
    assert fsim.faults["vendors"] is None  # a bad request changes nothing
    bad = requests.post(f"{base}/_sim/faults", json={"widgets": "empty"}, timeout=TIMEOUT)
    assert bad.status_code == 400 and "unknown data type" in bad.json()["error"]

    r = requests.post(f"{base}/_sim/mutate", json={"data_type": "inventory", "ratio": 0.01}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["versions"]["inventory"] == 1
    assert requests.post(f"{base}/_sim/mutate", json={"data_type": "x"}, timeout=TIMEOUT).status_code == 400

    state = requests.post(f"{base}/_sim/reset", timeout=TIMEOUT).json()
    assert state["versions"]["inventory"] == 0 and set(state["faults"].values()) == {None}
    assert state["requests_served"]["inventory"] == 2


def test_requests_served_counts_each_attempt_so_tests_can_assert_no_retry(fsim):
    fsim.set_fault("vendors", "http_401")
    get(fsim, "vendors")
    assert fsim.requests_served == {"inventory": 0, "vendors": 1, "boms": 0, "purchase_orders": 0}


# --- sizes: tiny and large ---------------------------------------------------------------------------------
def test_one_row_and_zero_row_inventories_are_served():
    with FinaleSimulator(rows=1) as sim:
        _, data = split_report(parse_csv(get(sim, "inventory").content), INVENTORY_HEADER)
        assert [row[0] for row in data] == ["SKU-000000"]
        assert get(sim, "boms").status_code == 200
    with FinaleSimulator(rows=0) as sim:
        assert parse_csv(get(sim, "inventory").content)[-1] == INVENTORY_HEADER


def test_a_100k_row_report_streams_and_counts_right():
    with FinaleSimulator(rows=100_000, seed=1) as sim:
        started = time.monotonic()
        with get(sim, "inventory", stream=True, timeout=30) as r:
            r.raw.decode_content = True
            reader = csv.reader(io.TextIOWrapper(r.raw, encoding="utf-8-sig", newline=""))
            rows = 0
            for row in reader:
                # Rows before the header are the preamble and do not count.
                rows = 0 if row == INVENTORY_HEADER else rows + 1
        assert rows == 100_000
    assert time.monotonic() - started < 15


def test_context_manager_stops_the_server():
    with FinaleSimulator(rows=5) as sim:
        url = sim.report_url("inventory")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


# --- the finalesim command -----------------------------------------------------------------------------------
def test_finalesim_refuses_a_fault_on_a_type_it_does_not_apply_to():
    from django.core.management.base import CommandError

    from finalesync.management.commands.finalesim import parse_fault

    assert parse_fault("inventory=renamed_stock_column") == ("inventory", "renamed_stock_column")
    with pytest.raises(CommandError, match="applies only to inventory"):
        parse_fault("vendors=blank_stock_column")


@pytest.mark.slow
def test_finalesim_serves_the_alt_spellings_and_faults_it_was_started_with():
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = ["--port", "0", "--rows", "50", "--spellings", "alt", "--fault", "purchase_orders=nan_json"]
    proc = subprocess.Popen(
        [sys.executable, str(root / "manage.py"), "finalesim", *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env=env,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("Press Ctrl-C"):
                break
        found = dict(line.split("=", 1) for line in lines if line.startswith("FINALE_"))
        auth = (found["FINALE_API_KEY"], found["FINALE_API_SECRET"])
        report = requests.get(found["FINALE_REPORT_URL_INVENTORY"], auth=auth, timeout=TIMEOUT)
        assert INVENTORY_HEADER_ALT in parse_csv(report.content)
        orders = requests.get(f"{found['FINALE_BASE_URL']}/demo/api/order/", auth=auth, timeout=TIMEOUT)
        assert "NaN" in orders.text
        assert "Header spellings: alt" in lines and "Faults: purchase_orders=nan_json" in lines
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
