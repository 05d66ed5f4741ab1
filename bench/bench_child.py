#!/usr/bin/env python
"""The benchmark's child processes: everything that runs inside Django (sync_bench.py itself never imports it).

    bench_child.py runsync ARGS...          manage.py runsync ARGS, with the phase timers when BENCH_PHASES is set
    bench_child.py loop --rows N ...        K more 1%-change syncs in this one process (sync_data_type)
    bench_child.py restore --seq S ...      restore the type to history seq S and check what came back
    bench_child.py checksum                 row count and a digest of every live value (JSON on stdout)
    bench_child.py naive --csv F --rows M   the per-row update_or_create baseline
    bench_child.py sqlite-floor --csv F --db D   Python executemany of pre-split rows (a SQLite floor)

The phase timers wrap engine functions by name (PHASES) and, inside `Staging.apply()`, time each SQL statement
through Django's `connection.execute_wrapper()`, so the statements that write `<table>_version` (the row
history) are told apart from those that write the live table. The engine's files are not changed. A timer
records inclusive seconds and calls per call path ("sync_data_type/Staging.load/Staging._write"), so a
function that runs inside another one (good_count inside diff) is never counted twice at one level.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(Path(__file__).resolve().parent))

# (module, qualified name) of every engine function the timers wrap. The report names them (sync_bench.py).
PHASES = (
    ("finalesync.sync", "sync_data_type"),
    ("finalesync.restore", "restore"),
    ("finalesync.runs", "Run.__init__"),
    ("finalesync.runs", "Run.__enter__"),
    ("finalesync.runs", "Run._finish"),
    ("finalesync.client", "FinaleClient._get"),
    ("finalesync.client", "ReportBody.read"),
    ("finalesync.datatypes.base", "ReportDataType.read_header"),
    ("finalesync.parsing", "line_digests"),
    ("finalesync.parsing", "ReportReader._parse"),
    ("finalesync.parsing", "ReportReader._parse_python"),
    ("finalesync.datatypes.base", "ReportDataType.raw_fields"),
    ("finalesync.datatypes.base", "DataType.finish"),
    ("finalesync.staging", "Staging.__enter__"),
    ("finalesync.staging", "Staging.__exit__"),
    ("finalesync.staging", "Staging.pass_over"),
    ("finalesync.staging", "Staging.load"),
    ("finalesync.staging", "Staging.load_state"),
    ("finalesync.staging", "Staging._write"),
    ("finalesync.staging", "Staging.index"),
    ("finalesync.staging", "Staging.drop_duplicates"),
    ("finalesync.staging", "Staging.good_count"),
    ("finalesync.staging", "Staging.live_count"),
    ("finalesync.staging", "Staging.diff"),
    ("finalesync.staging", "Staging._emptied"),
    ("finalesync.staging", "Staging.apply"),
    ("finalesync.safety", "check_readable"),
    ("finalesync.safety", "check_changes"),
    ("finalesync.history", "apply_state"),
    ("finalesync.history", "live_differs"),
    ("django.db.backends.base.base", "BaseDatabaseWrapper.commit"),
)
# Statements inside Staging.apply(), by what they write.
_STATEMENT = re.compile(r'^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+"?(\w+)"?', re.IGNORECASE)


class PhaseTimer:
    """Inclusive seconds and calls per call path of the wrapped functions."""

    def __init__(self):
        self.stack: list[str] = []
        self.spent: dict[str, list] = {}

    def reset(self) -> None:
        self.spent = {}

    def add(self, path: str, seconds: float) -> None:
        entry = self.spent.setdefault(path, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds

    def path(self, name: str) -> str:
        return "/".join([*self.stack, name])

    def wrap(self, name: str, fn):
        timer = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            path = timer.path(name)
            timer.stack.append(name)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timer.stack.pop()
                timer.add(path, time.perf_counter() - start)

        return timed

    def statement_label(self, sql: str) -> str:
        match = _STATEMENT.match(sql)
        if not match:
            return "SQL other"
        verb = match.group(1).split()[0].upper()
        target = "history" if match.group(2).endswith("_version") else "live"
        return f"SQL {verb} {target}"

    def wrap_statements(self, fn):
        """`fn` (Staging.apply) with each SQL statement it runs timed by what it writes."""
        from django.db import connection

        timer = self

        def statement(execute, sql, params, many, context):
            start = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timer.add(timer.path(timer.statement_label(sql)), time.perf_counter() - start)

        @functools.wraps(fn)
        def applying(*args, **kwargs):
            with connection.execute_wrapper(statement):
                return fn(*args, **kwargs)

        return applying


TIMER = PhaseTimer()


def install_timers() -> PhaseTimer:
    """Wrap PHASES in TIMER (after django.setup(), before anything runs)."""
    for module_name, qualname in PHASES:
        owner = importlib.import_module(module_name)
        *path, attr = qualname.split(".")
        for part in path:
            owner = getattr(owner, part)
        fn = getattr(owner, attr)
        if qualname == "Staging.apply":
            fn = TIMER.wrap_statements(fn)
        label = "COMMIT" if qualname.endswith(".commit") else qualname
        setattr(owner, attr, TIMER.wrap(label, fn))
    # runsync imported sync_data_type by name before the patch: point it at the wrapped one.
    import finalesync.management.commands.runsync as runsync_command
    import finalesync.sync

    runsync_command.sync_data_type = finalesync.sync.sync_data_type
    return TIMER


# Engine changes tried out without editing the engine: each rewrites or follows one statement the engine runs
# (BENCH_PROTOTYPES=name,name). The report says when a figure was measured with one.
def _analyze_diff(execute, sql, params, many, context):
    """Staging.diff(): ANALYZE the diff table right after creating it (the joins on it then get estimates). The
    engine does this itself since d427943; the prototype is for measuring older checkouts."""
    result = execute(sql, params, many, context)
    if sql.startswith('CREATE TEMPORARY TABLE "finalesync_diff_'):
        execute(f"ANALYZE {sql.split()[3]}", None, False, context)
    return result


PROTOTYPES = {"analyze-diff": _analyze_diff}


def setup_django(*, timers: bool) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    if timers:
        install_timers()
    from django.db import connection

    for name in filter(None, os.environ.get("BENCH_PROTOTYPES", "").split(",")):
        if name not in PROTOTYPES:
            raise SystemExit(f"unknown prototype {name!r}; known: {', '.join(PROTOTYPES)}")
        if connection.vendor == "postgresql":
            connection.execute_wrappers.append(PROTOTYPES[name])


# --- runsync ------------------------------------------------------------------------------------------------
def runsync(argv: list[str]) -> None:
    phases_file = os.environ.get("BENCH_PHASES")
    setup_django(timers=bool(phases_file))
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line([str(ROOT / "manage.py"), "runsync", *argv])
    finally:
        if phases_file:
            Path(phases_file).write_text(json.dumps({**TIMER.spent, **memory()}))


def memory() -> dict:
    """This process's peak RSS (VmHWM, its own address space only) and the Arrow memory pool's peak, both in
    bytes, under keys no call path can have."""
    import pyarrow as pa

    out = {"_arrow_pool_peak_bytes": pa.default_memory_pool().max_memory()}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    out["_vmhwm_bytes"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


# --- live-table digest ----------------------------------------------------------------------------------------
def live_checksum() -> dict:
    """Row count and a digest of every value of every live row (key order; stamps included): equal digests
    mean equal tables, on the same database."""
    from django.db import connection, transaction

    from finalesync.datatypes.inventory import InventoryItem
    from finalesync.mirror import STAMPS, data_fields

    qn = connection.ops.quote_name
    columns = ["natural_key", *(f.column for f in data_fields(InventoryItem)), *STAMPS]
    digest = hashlib.blake2b(digest_size=16)
    count = 0
    with transaction.atomic():
        # A server-side cursor on PostgreSQL: a million rows are streamed, not fetched at once.
        with connection.chunked_cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(qn(c) for c in columns)} FROM {qn(InventoryItem._meta.db_table)} "
                "ORDER BY natural_key"
            )
            while rows := cursor.fetchmany(20_000):
                for row in rows:
                    digest.update(repr(row).encode())
                count += len(rows)
    return {"count": count, "checksum": digest.hexdigest()}


def history_seq() -> int:
    from finalesync.models import DataTypeConfig

    return DataTypeConfig.objects.get(data_type="inventory").history_seq


# --- the loop of 1% syncs -------------------------------------------------------------------------------------
def loop(args) -> dict:
    """`args.syncs` syncs in this process, each after one more 1% mutation of the served report."""
    setup_django(timers=True)
    from bodies import InventoryBodies

    from finalesync.models import SyncRun
    from finalesync.sync import sync_data_type

    report = Path(args.report)
    start = time.perf_counter()
    bodies = InventoryBodies(args.rows, args.seed, events=args.events)
    rebuild_s = time.perf_counter() - start
    first_seq = history_seq()
    keep_at = {int(x) for x in args.checksum_seqs.split(",") if x}
    out = {"rebuild_s": rebuild_s, "first_seq": first_seq, "syncs": [], "checksums": {}}
    for _ in range(args.syncs):
        changed = bodies.mutate()
        bodies.write(report)
        TIMER.reset()
        begin = time.perf_counter()
        result = sync_data_type(data_type="inventory", trigger=SyncRun.Trigger.CLI, force=True, user="bench")
        wall = time.perf_counter() - begin
        seq = history_seq()
        record = {
            "version": bodies.version,
            "seq": seq,
            **_outcome(result, wall),
            "unchanged": result.unchanged,
            "expected_updated": len(changed),
            "phases": TIMER.spent,
        }
        out["syncs"].append(record)
        print(
            f"[loop] v{bodies.version} seq {seq}: {result.duration_ms} ms, updated {result.updated} "
            f"(expected {len(changed)})",
            file=sys.stderr,
            flush=True,
        )
        if str(result.outcome) != "success":
            break
        if seq in keep_at:
            out["checksums"][str(seq)] = live_checksum()
    out["last_version"] = bodies.version
    return out


# --- restore ----------------------------------------------------------------------------------------------------
def restore(args) -> dict:
    """Restore to `args.seq`, then read back the live rows' digest."""
    setup_django(timers=True)
    from finalesync.restore import restore as restore_type

    before = history_seq()
    TIMER.reset()
    begin = time.perf_counter()
    result = restore_type(data_type="inventory", seq=args.seq, user="bench")
    wall = time.perf_counter() - begin
    phases = TIMER.spent
    return {
        "from_seq": before,
        "to_seq": args.seq,
        "new_seq": history_seq(),
        **_outcome(result, wall),
        "phases": phases,
        "after": live_checksum(),
    }


def _outcome(result, wall: float) -> dict:
    """What a sync or a restore result says, for the report."""
    return {
        "outcome": str(result.outcome),
        "error": result.error,
        "duration_ms": result.duration_ms,
        "wall": wall,
        "created": result.created,
        "updated": result.updated,
        "deleted": result.deleted,
    }


# --- baselines ----------------------------------------------------------------------------------------------------
def naive(args) -> dict:
    """Parse the first `args.rows` rows with the engine's own parser (not timed), then time Django's per-row
    update_or_create with autocommit (each row its own transaction): into an empty table, then again."""
    setup_django(timers=False)
    from django.db import connection
    from django.utils import timezone

    from finalesync.datatypes.inventory import DATATYPE, InventoryItem

    start = time.perf_counter()
    rows: list[tuple[str, dict]] = []
    for parsed in DATATYPE.read(Path(args.csv).read_bytes()):
        for row in parsed.table.to_pylist():
            if row["bad"]:
                continue
            values = {name: row[name] for name in DATATYPE.fields}
            values["extra"] = json.loads(row["extra"] or "{}")
            rows.append((row["natural_key"], values))
            if len(rows) >= args.rows:
                break
        if len(rows) >= args.rows:
            break
    parse_s = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(InventoryItem._meta.db_table)}")

    def one_pass() -> float:
        begin = time.perf_counter()
        for key, values in rows:
            now = timezone.now()
            InventoryItem.objects.update_or_create(
                natural_key=key,
                defaults={**values, "updated_at": now},
                create_defaults={**values, "created_at": now, "updated_at": now},
            )
        return time.perf_counter() - begin

    create_s = one_pass()
    update_s = one_pass()
    count = InventoryItem.objects.count()
    if count != len(rows):
        raise SystemExit(f"naive baseline left {count} rows, expected {len(rows)}")
    return {"rows": len(rows), "parse_s": parse_s, "create_s": create_s, "update_s": update_s}


def sqlite_floor(args) -> dict:
    """SQLite's Python floor: the rows split by the csv module beforehand (not timed), then one executemany
    into a plain table of text columns and a commit, with the pragmas the engine's connections use."""
    import csv
    import sqlite3

    with open(args.csv, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("DROP TABLE IF EXISTS bench_plain_py")
    conn.execute(f"CREATE TABLE bench_plain_py ({', '.join(f'c{i} text' for i in range(len(header)))})")
    sql = f"INSERT INTO bench_plain_py VALUES ({', '.join('?' * len(header))})"
    begin = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(sql, rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - begin
    loaded = conn.execute("SELECT count(*) FROM bench_plain_py").fetchone()[0]
    conn.execute("DROP TABLE bench_plain_py")
    conn.close()
    return {"rows": loaded, "seconds": seconds}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["runsync"]:
        runsync(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="bench_child.py")
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("loop")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--events", type=int, required=True, help="mutations already published")
    p.add_argument("--syncs", type=int, required=True)
    p.add_argument("--report", required=True, help="the served report file")
    p.add_argument("--checksum-seqs", default="", help="digest the live rows after reaching these seqs (a,b)")
    p = sub.add_parser("restore")
    p.add_argument("--seq", type=int, required=True)
    sub.add_parser("checksum")
    p = sub.add_parser("naive")
    p.add_argument("--csv", required=True)
    p.add_argument("--rows", type=int, required=True)
    p = sub.add_parser("sqlite-floor")
    p.add_argument("--csv", required=True)
    p.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    if args.mode == "checksum":
        setup_django(timers=False)
        out = live_checksum()
    else:
        out = {"loop": loop, "restore": restore, "naive": naive, "sqlite-floor": sqlite_floor}[args.mode](
            args
        )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
