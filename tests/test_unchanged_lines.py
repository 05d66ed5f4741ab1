"""Passing over unchanged report lines (finalesync/unchanged.py).

A re-sync reads only the lines that changed, and must end exactly where a sync that compares every row ends:
the same live rows, the same counts, the same bad rows and duplicates, the same refusals, the same history.
Every scenario below runs twice, passing over (the default) and comparing every row
(SYNC_FULL_COMPARE_HOURS=0), and the two must agree."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from django.utils import timezone

from finalesync.datatypes import registry
from finalesync.models import DataTypeConfig, SyncRun
from finalesync.parsing import DIGEST, LINE, ReportReader
from finalesync.restore import restore
from finalesync.sync import sync_data_type
from finalesync.unchanged import INDEX_TYPES, UnchangedLines, _read_index_csv, line_digests

from .conftest import BodyClient

pytestmark = pytest.mark.django_db

HEADER = "SKU,Name,Units in stock,Unit Price"
BASE = [f"K{i:03d},Thing {i},{i},{i}.50" for i in range(200)]
Inventory = registry.get("inventory").model


@pytest.fixture(autouse=True)
def report_urls(finale):
    """Settings with report URLs (the bodies themselves come from BodyClient)."""
    return finale


def body(rows: list[str], header: str = HEADER) -> bytes:
    return "".join(f"{line}\r\n" for line in [header, *rows]).encode()


def sync(data: bytes, **kwargs):
    return sync_data_type(
        data_type="inventory", force=True, client_factory=lambda: BodyClient(data, verified=True), **kwargs
    )


def details(result) -> dict:
    return SyncRun.objects.get(pk=result.run_id).details


def live() -> dict:
    return {
        r["natural_key"]: {
            k: v for k, v in r.items() if k not in ("id", "line_digest", "created_at", "updated_at")
        }
        for r in Inventory.objects.values()
    }


def summary(result) -> tuple:
    d = details(result)
    return (
        result.outcome,
        result.error_code,
        result.created,
        result.updated,
        result.deleted,
        result.unchanged,
        result.bad_rows,
        result.item_count,
        sorted(map(str, d.get("bad_examples", []))),
    )


def forget_everything():
    Inventory.objects.all().delete()
    Inventory.Versions.objects.all().delete()
    SyncRun.objects.all().delete()
    DataTypeConfig.objects.filter(data_type="inventory").update(
        history_seq=0, history_floor=0, live_rows=0, full_compare_at=None
    )


def both_ways(settings, bodies: list[bytes]) -> list[tuple]:
    """Sync `bodies` in turn passing over unchanged lines, then again comparing every row; assert both end
    the same, and return the summaries (and what was passed over) of the first way."""
    runs = {}
    for hours in (24, 0):
        settings.SYNC_FULL_COMPARE_HOURS = hours
        forget_everything()
        results = [sync(b) for b in bodies]
        runs[hours] = (
            [summary(r) for r in results],
            live(),
            [details(r).get("lines_passed_over") for r in results],
        )
    (fast, fast_rows, passed), (full, full_rows, _) = runs[24], runs[0]
    assert fast == full
    assert fast_rows == full_rows
    return list(zip(fast, passed, strict=True))


# --- the scenarios -----------------------------------------------------------------------------------------------
def test_an_unchanged_resync_passes_over_every_line_and_writes_nothing(settings):
    first = sync(body(BASE))
    assert details(first)["full_compare"] == "first sync"
    before = list(Inventory.objects.order_by("natural_key").values())
    again = sync(body(BASE))
    assert (again.outcome, again.unchanged, again.created, again.updated, again.deleted) == (
        "success",
        200,
        0,
        0,
        0,
    )
    assert details(again)["lines_passed_over"] == 200 and again.item_count == 200
    assert list(Inventory.objects.order_by("natural_key").values()) == before
    assert Inventory.Versions.objects.count() == 200


def test_changes_additions_and_removals_match_a_full_comparison(settings):
    changed = [*BASE]
    changed[5] = "K005,Thing 5,99,5.50"  # a value
    changed[6] = "K006,Thing 6 renamed,6,6.50"
    del changed[10:13]  # three rows gone
    changed.append("NEW1,New thing,1,1.00")
    (_, _), (second, passed) = both_ways(settings, [body(BASE), body(changed)])
    assert second[:6] == ("success", None, 1, 2, 3, 195)
    assert passed == 195  # 200 lines, 3 gone, 2 changed


def test_a_line_written_differently_with_the_same_values_is_unchanged_and_then_passed_over(settings):
    spelled = [*BASE]
    spelled[7] = 'K007,"Thing 7",7,7.5'  # quoted, one decimal fewer: the same values
    both_ways(settings, [body(BASE), body(spelled), body(spelled)])
    settings.SYNC_FULL_COMPARE_HOURS = 24
    forget_everything()
    sync(body(BASE))
    second = sync(body(spelled))
    assert (second.updated, details(second)["lines_passed_over"]) == (0, 199)
    third = sync(body(spelled))
    assert details(third)["lines_passed_over"] == 200  # the row took its new line's digest


@pytest.mark.parametrize(
    "second",
    [
        pytest.param([*BASE, BASE[3]], id="an unchanged line repeated"),
        pytest.param(
            [*BASE, "K003,Thing 3,77,3.50"], id="unchanged line first, then a changed one of its key"
        ),
        pytest.param(["K003,Thing 3,77,3.50", *BASE], id="changed line first, then the unchanged one"),
        pytest.param([*BASE, "K004,Thing 4,lots,4.50"], id="unchanged line, then a bad one of its key"),
        pytest.param(["K004,Thing 4,lots,4.50", *BASE[:4], *BASE[5:]], id="a bad line alone keeps its row"),
        pytest.param([BASE[3], BASE[3], *BASE[:3], *BASE[4:]], id="repeated at the top"),
        pytest.param(list(reversed(BASE)), id="every line moved"),
    ],
)
def test_repeated_keys_bad_rows_and_moved_lines_match_a_full_comparison(settings, second):
    both_ways(settings, [body(BASE), body(second), body(BASE)])


@pytest.mark.parametrize(
    "framed",
    [
        pytest.param([*BASE[:100], HEADER, *BASE[100:]], id="the header repeated mid-report"),
        pytest.param([*BASE[:50], "", *BASE[50:150], ",,,", *BASE[150:]], id="blank and empty lines"),
        pytest.param([*BASE, "", "Total,200 rows"], id="a footer after a blank line"),
    ],
)
def test_report_framing_matches_a_full_comparison_and_later_syncs_pass_over_it(settings, framed):
    runs = both_ways(settings, [body(BASE), body(framed), body(framed)])
    assert runs[2][0][0] == "success"


def test_line_ends_changed_from_crlf_to_lf_read_every_line_once_and_change_nothing(settings):
    lf = "".join(f"{line}\n" for line in [HEADER, *BASE]).encode()
    runs = both_ways(settings, [body(BASE), lf, lf])
    assert [(r[0][2], r[0][3], r[0][4]) for r in runs] == [(200, 0, 0), (0, 0, 0), (0, 0, 0)]
    assert [passed for _, passed in runs][1:] == [None, 200]  # no line as it was: every row compared


def test_a_field_that_spans_lines_is_read_and_its_neighbours_still_match(settings):
    multi = [*BASE]
    multi[8] = 'K008,"Thing\r\n8",8,8.50'
    runs = both_ways(settings, [body(BASE), body(multi), body(multi)])
    (second, _), (third, _) = runs[1], runs[2]
    assert second[3] == 1  # K008's name changed
    assert third[3] == 0


def test_keys_with_line_breaks_quotes_and_commas_are_read_back_from_the_live_rows(settings):
    """The live rows' keys are read back (on PostgreSQL as CSV): a key that CSV must quote, or that holds a
    line break, is still one row's key."""
    odd = [*BASE]
    odd[3] = '"K0\n03",Thing 3,3,3.50'
    odd[4] = '"K0""04",Thing 4,4,4.50'
    odd[5] = '"K0,05",Thing 5,5,5.50'
    odd[7] = '"K0\r07",Thing 7,7,7.50'
    changed = [*odd]
    changed[6] = "K006,Thing 6,66,6.50"
    runs = both_ways(settings, [body(odd), body(odd), body(changed)])
    assert [(r[0][0], r[0][3], r[0][5]) for r in runs] == [
        ("success", 0, 0),
        ("success", 0, 200),
        ("success", 1, 199),
    ]
    assert [passed for _, passed in runs] == [None, 200, 199]
    assert {"K0\n03", 'K0"04', "K0,05", "K0\r07"} <= set(live())


def test_a_new_column_layout_reads_every_line(settings):
    swapped = [",".join([p[0], p[2], p[1], p[3]]) for p in (line.split(",") for line in BASE)]
    runs = both_ways(settings, [body(BASE), body(swapped, header="SKU,Units in stock,Name,Unit Price")])
    (second, passed) = runs[1]
    assert second[3] == 0 and passed is None  # the same rows, and no line could be trusted to read the same
    settings.SYNC_FULL_COMPARE_HOURS = 24
    forget_everything()
    sync(body(BASE))
    again = sync(body(swapped, header="SKU,Units in stock,Name,Unit Price"))
    assert details(again)["full_compare"] == "no line was as the last sync read it"
    assert (
        details(sync(body(swapped, header="SKU,Units in stock,Name,Unit Price")))["lines_passed_over"] == 200
    )


def test_a_large_drop_is_refused_when_passing_over_too(settings):
    runs = both_ways(settings, [body(BASE), body(BASE[:60])])
    assert runs[1][0][:2] == ("rolled_back", "suspicious_drop")
    assert Inventory.objects.count() == 200


def test_a_restore_clears_the_digests_of_the_rows_it_puts_back_so_the_next_sync_reads_them(settings):
    first = sync(body(BASE))
    changed = [f"K{i:03d},Thing {i},{i + 1000 if i < 20 else i},{i}.50" for i in range(200)]
    sync(body(changed))
    done = restore(
        data_type="inventory", seq=SyncRun.objects.get(pk=first.run_id).history_seq, user="ops", reason="t"
    )
    assert done.outcome == "success" and done.updated == 20
    assert Inventory.objects.filter(line_digest__isnull=True).count() == 20
    again = sync(body(changed))  # Finale still says `changed`: the restored rows are read and updated again
    assert (again.updated, details(again)["lines_passed_over"]) == (20, 180)
    assert Inventory.objects.get(natural_key="K003").on_hand == 1003


def test_a_value_changed_by_hand_is_repaired_by_the_next_full_comparison(settings):
    sync(body(BASE))
    Inventory.objects.filter(natural_key="K009").update(on_hand=12345)
    passed = sync(body(BASE))
    assert passed.updated == 0  # passed over: the line did not change (the documented trade-off)
    DataTypeConfig.objects.filter(data_type="inventory").update(
        full_compare_at=timezone.now() - timedelta(hours=25)
    )
    full = sync(body(BASE))
    assert full.updated == 1 and Inventory.objects.get(natural_key="K009").on_hand == 9
    assert details(full)["full_compare"].startswith("last full comparison more than 24 hours ago")
    assert details(sync(body(BASE)))["lines_passed_over"] == 200


def test_a_row_deleted_by_hand_makes_the_next_sync_compare_every_row(settings):
    sync(body(BASE))
    Inventory.objects.filter(natural_key="K009").delete()
    result = sync(body(BASE))
    assert result.created == 1 and "rows where the last sync left 200" in details(result)["full_compare"]


def test_types_whose_lines_do_not_stand_alone_are_read_in_full(finale):
    for data_type in ("boms", "purchase_orders"):
        sync_data_type(data_type=data_type, force=True)
        again = sync_data_type(data_type=data_type, force=True)
        assert again.outcome == "success" and again.unchanged == again.item_count > 0
        assert details(again)["full_compare"] == "every row is read"


def test_the_simulators_reports_pass_over_and_agree_with_a_full_comparison(finale, settings):
    sync_data_type(data_type="vendors", force=True)
    for _ in range(3):
        finale.mutate("vendors", ratio=0.2)
        settings.SYNC_FULL_COMPARE_HOURS = 24
        fast = sync_data_type(data_type="vendors", force=True)
        after_fast = {r["natural_key"]: r for r in registry.get("vendors").model.objects.values()}
        assert details(fast)["lines_passed_over"] > 0
        settings.SYNC_FULL_COMPARE_HOURS = 0
        full = sync_data_type(data_type="vendors", force=True)  # the same report, every row compared
        assert (full.outcome, full.created, full.updated, full.deleted) == ("success", 0, 0, 0)
        assert {r["natural_key"]: r for r in registry.get("vendors").model.objects.values()} == after_fast


# --- the reader ----------------------------------------------------------------------------------------------------
def _reader(data: bytes):
    datatype = registry.get("inventory")
    reader = ReportReader(io.BytesIO(data), what="inventory report", piece_bytes=64)
    return reader, datatype.read_header(reader)


def test_the_reader_numbers_the_lines_it_reads_and_passes_over_the_known_ones():
    salt = b"s" * 16
    lines = [line.encode() + b"\r" for line in BASE[:6]]
    digests = line_digests(salt, lines)
    known = UnchangedLines(pa.array([1, 2], pa.int64()), pa.array(["K001", "K004"]), digests.take([1, 4]))
    reader, header = _reader(body(BASE[:6]))
    batches = list(reader.batches(header, salt=salt, unchanged=known))
    read = pa.Table.from_batches(batches)
    assert read[LINE].to_pylist() == [1, 3, 4, 6]  # record numbers of the lines read
    assert read["c0"].to_pylist() == ["K000", "K002", "K003", "K005"]
    assert read[DIGEST].to_pylist() == digests.take([0, 2, 3, 5]).to_pylist()
    assert known.passed == 2 and reader.rows_read == 6


def test_a_record_across_lines_is_one_digest_and_records_the_parser_splits_otherwise_have_none():
    salt = b"s" * 16
    multi = [b'A,"two\r\nlines",1,1\r', b"B,b,2,2\r"]
    known = UnchangedLines(pa.array([7], pa.int64()), pa.array(["B"]), line_digests(salt, multi[1:]))
    reader, header = _reader(f"{HEADER}\r\n".encode() + b"\n".join(multi) + b"\n")
    reader.piece_bytes = 1 << 20
    read = pa.Table.from_batches(list(reader.batches(header, salt=salt, unchanged=known)))
    assert read["c0"].to_pylist() == ["A"] and read["c1"].to_pylist() == ["two\r\nlines"]
    assert read[DIGEST].to_pylist() == line_digests(salt, multi[:1]).to_pylist()
    assert read[LINE].to_pylist() == [1] and known.passed == 1
    nothing = UnchangedLines(pa.array([], pa.int64()), pa.array([], pa.string()), pa.array([], pa.int64()))
    # A bare carriage return ends a record for the parser; stray quotes in unquoted fields do not pair up.
    for text in (f"{HEADER}\r\nA,a,1,1\rB,b,2,2\r\n", f'{HEADER}\r\nA,5" pipe,1,1\r\nB,6" pipe,2,2\r\n'):
        reader, header = _reader(text.encode())
        reader.piece_bytes = 1 << 20
        read = pa.Table.from_batches(list(reader.batches(header, salt=salt, unchanged=nothing)))
        assert read["c0"].to_pylist() == ["A", "B"] and read[DIGEST].null_count == 2


def test_the_live_rows_are_read_a_part_at_a_time(settings, monkeypatch):
    from finalesync import unchanged

    monkeypatch.setattr(unchanged, "PART_BYTES", 500)
    monkeypatch.setattr(unchanged, "SQLITE_PAGE", 64)
    sync(body(BASE))
    fewer = sync(body(BASE[:-1]))
    assert (fewer.deleted, details(fewer)["lines_passed_over"]) == (1, 199)
    assert details(sync(body(BASE[:-1])))["lines_passed_over"] == 199


@pytest.mark.parametrize("in_memory", [0, 10_000])
def test_repeated_keys_out_of_order_are_found_by_the_database_or_in_memory(settings, monkeypatch, in_memory):
    from finalesync import staging

    monkeypatch.setattr(staging, "DISTINCT_IN_MEMORY", in_memory)
    shuffled = [*BASE[100:], *BASE[:100], BASE[150]]
    settings.SYNC_FULL_COMPARE_HOURS = 0
    result = sync(body(shuffled))
    assert (result.created, result.bad_rows) == (200, 1)
    assert sync(body(list(reversed(BASE)))).unchanged == 200


def test_a_key_with_a_line_break_where_the_csv_reader_cuts_its_blocks_is_read_whole():
    """The live rows' index comes from PostgreSQL as CSV; pyarrow reads it in 1 MiB blocks cut at the last line
    end before the boundary. When that line end is inside a quoted key, the reader must follow the quotes."""
    rows, size = [], 0
    while size < (1 << 20) - 40:
        rows.append(f"{len(rows)},K{len(rows):07d},{len(rows)}\n".encode())
        size += len(rows[-1])
    odd = len(rows)
    rows.append(f'{odd},"A\nB{"x" * 60}",{odd}\n'.encode())
    rows += [f"{n},K{n:07d},{n}\n".encode() for n in range(odd + 1, odd + 1000)]
    data = b"".join(rows)
    assert data.index(b"A\n") + 1 < 1 << 20 < data.index(b"\n", data.index(b"A\n") + 2)
    table = _read_index_csv(data, list(INDEX_TYPES), len(rows))
    assert table.num_rows == len(rows)
    assert table["key"][odd].as_py() == f"A\nB{'x' * 60}"
    assert table["id"][odd + 1].as_py() == odd + 1


def test_the_reading_code_is_fingerprinted_as_the_process_loaded_it():
    """A deploy that replaces the files while a worker runs must not give the old code the new code's salt:
    the files are read at start-up (AppConfig.ready), not at the first sync."""
    script = (
        "import django, pathlib; django.setup()\n"
        "from finalesync.datatypes import registry\n"
        "from finalesync.unchanged import line_salt\n"
        "if REPLACED: pathlib.Path.read_bytes = lambda self: b'replaced by a deploy'\n"
        "print(line_salt(registry.get('inventory'), ['SKU']).hex())\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    salts = [
        subprocess.run(
            [sys.executable, "-c", script.replace("REPLACED", replaced)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout.strip()
        for replaced in ("False", "True")
    ]
    assert salts[0] == salts[1]
    assert len(salts[0]) == 32


def test_a_first_sync_into_an_empty_table_creates_what_a_compared_sync_would(settings):
    """Into an empty live table every good staged row is created without a diff (staging.py, `_all_new`): the
    same rows, bad rows, repeated keys and history as a sync that compares against a table with rows."""
    report = body([*BASE, "K003,Again,1,1.00", "K900,Thing 900,lots,1.00", ",No key,1,1.00"])
    settings.SYNC_FULL_COMPARE_HOURS = 0

    def history_keys():
        return sorted(Inventory.Versions.objects.values_list("natural_key", flat=True))

    first = sync(report)
    assert (first.outcome, first.created, first.bad_rows) == ("success", 200, 3)
    empty_way = (live(), history_keys(), sorted(map(str, details(first).get("bad_examples", []))))
    forget_everything()
    assert sync(body(BASE[:10])).created == 10
    compared = sync(report)
    assert (compared.outcome, compared.created, compared.updated, compared.bad_rows) == ("success", 190, 0, 3)
    assert empty_way == (live(), history_keys(), sorted(map(str, details(compared).get("bad_examples", []))))
