#!/usr/bin/env python
"""Benchmark of an inventory sync against PostgreSQL and the Finale simulator (a report, not a test).

    python bench/sync_bench.py [--rows N | --million] [--database-url URL] [--seed S] [--naive-rows M]
                               [--phases] [--profile DIR] [--json FILE] [--markdown FILE]
                               [--step-timeout S] [--keep-db]

It creates a throw-away database (`finalesync_bench_<pid>`, migrated with `manage.py migrate`, dropped at the
end), starts the simulator as a separate process (`manage.py finalesim`, so it does not share the GIL with the
sync), and measures with N inventory rows:

  (a) a full sync into an empty table          (`manage.py runsync inventory --force --json`, own process)
  (b) a re-sync with no changes                 (same, own process)
  (c) a re-sync after 1% of the rows changed    (simulator POST /_sim/mutate, then the same)
  (d) the naive baseline: per-row Django `update_or_create` on a slice of the same rows (parsed first with
      the project's own parser; only the database writes are timed), into an empty table and then again
  (e) psql `\\copy` of the same CSV into a plain table of text columns: the floor

Each step is a child process whose peak RSS and CPU time are read from `os.wait4()` (that child's own
rusage). Sync times are the engine's `duration_ms`; the outer wall time (process start, Django setup) is shown
too. A sync that passes --step-timeout is killed, and the benchmark reports its database sessions as they were
just before.
Exit status: 0 when every step ran and every correctness check held (targets missed or not: it is a report),
1 when a step failed or a correctness check did not hold, 2 on a usage or setup error.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "manage.py")
PY = sys.executable
DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
LIVE_TABLE = "finalesync_inventoryitem"
STEP_TIMEOUT = 3600  # seconds; a hung step is killed rather than hanging the benchmark

# Targets (see docs/benchmarks.md).
TARGET_FULL_VS_COPY = 3.0  # (a) within 3x of (e)
TARGET_RESYNC_VS_FULL = 1 / 3  # (b), (c) at most 1/3 of (a)
TARGET_RSS_MB = 250  # peak RSS of a sync at 1,000,000 rows
RSS_TARGET_ROWS = 1_000_000


class BenchError(Exception):
    """A step failed or a result was wrong: the figures cannot be trusted."""


@dataclass
class Child:
    rc: int
    stdout: str
    stderr: str
    wall: float
    maxrss_mb: float
    cpu: float = 0.0  # the child's own user + system CPU seconds
    timed_out: str | None = None  # why the watchdog killed the child


@dataclass
class Step:
    key: str
    label: str
    rows: int
    seconds: float
    wall: float | None = None
    rss_mb: float | None = None
    note: str = ""
    cpu: float | None = None
    result: dict = field(default_factory=dict)
    phases: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------------------------------
def run_child(cmd: list[str], env: dict, *, timeout: float = STEP_TIMEOUT, diagnose=None) -> Child:
    """Run `cmd` to completion; return its output, wall time, CPU time and its own peak RSS (wait4).

    The child is killed after `timeout` seconds; `timed_out` then says so, followed by `diagnose()` (a
    snapshot taken just before the kill) when given."""
    seen: list[str] = []

    def expire(proc: subprocess.Popen) -> None:
        reason = f"no result after {timeout:g} s"
        if diagnose is not None:
            try:
                reason += "\n" + diagnose()
            except Exception as exc:  # noqa: BLE001 - a diagnostic only
                reason += f"\n(no diagnostics: {exc})"
        seen.append(reason)
        _kill(proc.pid)

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout, expire, args=(proc,))
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            timer.join()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
        out.seek(0)
        err.seek(0)
        return Child(
            rc=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            wall=wall,
            maxrss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
            cpu=usage.ru_utime + usage.ru_stime,
            timed_out=seen[0] if seen else None,
        )


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Simulator:
    """`manage.py finalesim` in its own process, on a free loopback port."""

    def __init__(self, rows: int, seed: int, env: dict):
        self.rows, self.seed, self.env = rows, seed, env
        self.proc: subprocess.Popen | None = None
        self.vars: dict[str, str] = {}
        self._err = tempfile.TemporaryFile()

    def start(self) -> Simulator:
        cmd = [PY, MANAGE, "finalesim", "--port", "0", "--rows", str(self.rows), "--seed", str(self.seed)]
        env = {**self.env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            text=True,
            # A benchmark started in the background inherits an ignored SIGINT; stop() relies on it.
            preexec_fn=_default_sigint,  # noqa: PLW1509 - no other threads run yet
        )
        deadline = time.monotonic() + 120
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if "=" in line and line.split("=", 1)[0].startswith("FINALE_"):
                name, value = line.split("=", 1)
                self.vars[name] = value
            if line.startswith("Press Ctrl-C"):
                break
            if time.monotonic() > deadline:
                break
        needed = {"FINALE_BASE_URL", "FINALE_ACCOUNT", "FINALE_API_KEY", "FINALE_API_SECRET"}
        if not needed <= set(self.vars) or "FINALE_REPORT_URL_INVENTORY" not in self.vars:
            self.stop()
            self._err.seek(0)
            raise BenchError(
                f"the simulator did not start: {self._err.read().decode(errors='replace')[-2000:]}"
            )
        # Nothing more is printed until it stops; stdout is left unread from here on.
        return self

    @property
    def base_url(self) -> str:
        return self.vars["FINALE_BASE_URL"]

    def auth_header(self) -> str:
        token = f"{self.vars['FINALE_API_KEY']}:{self.vars['FINALE_API_SECRET']}".encode()
        return "Basic " + base64.b64encode(token).decode("ascii")

    def mutate(self, ratio: float) -> dict:
        body = json.dumps({"data_type": "inventory", "ratio": ratio}).encode()
        request = urllib.request.Request(
            self.base_url + "/_sim/mutate",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback simulator
            return json.loads(response.read())

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self._err.close()


# --- database ---------------------------------------------------------------------------------------------------
def db_url(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def pg_connect(url: str, *, autocommit: bool = True):
    import psycopg

    # psycopg takes postgresql:// URIs; django-environ's postgres:// is the same thing.
    parts = urlsplit(url)
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql", "pgsql", "psql") else parts.scheme
    return psycopg.connect(urlunsplit((scheme, *parts[1:])), autocommit=autocommit)


def libpq_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("postgresql", *parts[1:]))


def scalar(url: str, sql: str, params=()):
    with pg_connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def activity(url: str) -> str:
    """The benchmark database's sessions, for a step that hangs."""
    name = urlsplit(url).path.lstrip("/")
    with pg_connect(url) as conn:
        rows = conn.execute(
            "SELECT pid, state, wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) "
            "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return "\n".join("  " + " | ".join(str(v) for v in row) for row in rows) or "  (none)"


PHASES = (
    ("finalesync.staging", "Staging.load", "fetch + parse + COPY into staging, ANALYZE"),
    ("finalesync.staging", "Staging._copy", "  of which: the COPY stream (fetch + parse + write)"),
    ("finalesync.staging", "Staging.index", "  of which: ANALYZE of the staged rows"),
    ("finalesync.staging", "Staging.drop_duplicates", "duplicate check"),
    ("finalesync.staging", "Staging.good_count", "count staged rows"),
    ("finalesync.staging", "Staging.live_count", "count live rows"),
    ("finalesync.staging", "Staging.kept_bad_count", "kept bad rows"),
    ("finalesync.sync", "_live_is_good", "live rows = last good? (a checksum)"),
    ("retries.backups", "backup_current", "backup (dump + gzip + spool + store, when changed)"),
    ("retries.backups", "content_checksum", "live-table checksum (all callers)"),
    ("finalesync.staging", "Staging.apply", "apply: DELETE / UPDATE / INSERT"),
    ("finalesync.sync", "sync_data_type", "whole sync (= duration_ms)"),
)


def runsync_shim(argv: list[str]) -> None:
    """`manage.py ARGV` in this process with the pipeline's phases (PHASES) wrapped in timers, for --phases.

    The engine's code is not changed: its functions are wrapped by name, and {phase: [calls, seconds]} is
    written to the file named by BENCH_SHIM_PHASES at exit (a dozen calls per sync: no measurable overhead)."""
    import atexit
    import functools
    import importlib

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finalesync.settings")
    import django

    django.setup()
    from django.core.management import execute_from_command_line

    phases_file = os.environ.get("BENCH_SHIM_PHASES")
    if phases_file:
        spent: dict[str, list] = {}

        def timed(name, fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    entry = spent.setdefault(name, [0, 0.0])
                    entry[0] += 1
                    entry[1] += time.perf_counter() - start

            return wrapper

        for module_name, qualname, _ in PHASES:
            owner = importlib.import_module(module_name)
            *path, attr = qualname.split(".")
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, attr, timed(qualname, getattr(owner, attr)))
        # runsync imported sync_data_type by name before the patch: point it at the wrapped one.
        import finalesync.management.commands.runsync as runsync_command
        import finalesync.sync

        runsync_command.sync_data_type = finalesync.sync.sync_data_type
        atexit.register(lambda: Path(phases_file).write_text(json.dumps(spent)))
    execute_from_command_line([MANAGE, *argv])


# --- steps ------------------------------------------------------------------------------------------------------
@dataclass
class SyncOptions:
    url: str
    timeout: float
    profile_dir: Path | None = None
    phases: bool = False  # time the pipeline's phases (runs runsync through runsync_shim)
    workdir: Path | None = None


def sync_step(key: str, label: str, env: dict, expect_rows: int, opts: SyncOptions) -> Step:
    cmd = [PY]
    if opts.profile_dir is not None:
        cmd += ["-m", "cProfile", "-o", str(opts.profile_dir / f"sync_{key}.prof")]
    cmd += [__file__, "--_runsync-shim"] if opts.phases else [MANAGE]
    cmd += ["runsync", "inventory", "--force", "--json"]
    env = dict(env)
    phases_file = None
    if opts.phases and opts.workdir is not None:
        phases_file = opts.workdir / f"phases_{key}.json"
        env["BENCH_SHIM_PHASES"] = str(phases_file)
    log(f"({key}) {label} ...")
    child = run_child(
        cmd,
        env,
        timeout=opts.timeout,
        diagnose=lambda: "its database sessions just before:\n" + activity(opts.url),
    )
    if child.timed_out is not None:
        raise BenchError(f"({key}) runsync was killed (--step-timeout): {child.timed_out}")
    lines = [ln for ln in child.stdout.splitlines() if ln.strip().startswith("{")]
    if child.rc != 0 or not lines:
        raise BenchError(
            f"({key}) runsync exited {child.rc}\nstdout: {child.stdout[-2000:]}\nstderr: {child.stderr[-3000:]}"
        )
    result = json.loads(lines[-1])
    if result.get("outcome") != "success":
        raise BenchError(f"({key}) sync outcome {result.get('outcome')}: {result.get('error')}")
    step = Step(
        key=key,
        label=label,
        rows=expect_rows,
        seconds=result["duration_ms"] / 1000,
        wall=child.wall,
        rss_mb=child.maxrss_mb,
        result=result,
        cpu=child.cpu,
    )
    if phases_file is not None and phases_file.exists():
        step.phases = json.loads(phases_file.read_text())
    log(
        f"({key}) {step.seconds:.2f} s engine, {child.wall:.2f} s outer, {child.maxrss_mb:.0f} MB; "
        f"created={result['created']} updated={result['updated']} deleted={result['deleted']} "
        f"unchanged={result['unchanged']}"
    )
    return step


def fetch_csv(sim: Simulator, dest: Path) -> tuple[float, int, list[str]]:
    """Download the inventory report once; write it from the header row on (BOM and preamble stripped).
    Returns (seconds, data bytes written, header cells)."""
    request = urllib.request.Request(
        sim.vars["FINALE_REPORT_URL_INVENTORY"], headers={"Authorization": sim.auth_header()}
    )
    start = time.perf_counter()
    header: list[str] | None = None
    written = 0
    with urllib.request.urlopen(request, timeout=600) as response, open(dest, "wb") as out:  # noqa: S310
        text = io.TextIOWrapper(response, encoding="utf-8-sig", newline="")
        for line in text:
            if header is None:
                cells = next(csv.reader([line]), [])
                if sum(1 for c in cells if c.strip()) >= 3 and "Product ID" in cells:
                    header = cells
                else:
                    continue  # preamble
            data = line.encode("utf-8")
            out.write(data)
            written += len(data)
    seconds = time.perf_counter() - start
    if header is None:
        raise BenchError("the inventory report has no header row")
    return seconds, written, header


def copy_floor(url: str, csv_path: Path, header: list[str], rows: int) -> Step:
    psql = shutil.which("psql")
    if psql is None:
        raise BenchError("psql is not on PATH (apt-get install postgresql-client)")
    cols = ", ".join(f"c{i} text" for i in range(len(header)))
    with pg_connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_plain")
        conn.execute(f"CREATE TABLE bench_plain ({cols})")
    log("(e) psql \\copy ...")
    path = str(csv_path).replace("'", "''")
    child = run_child(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", libpq_url(url), "-c",
         f"\\copy bench_plain FROM '{path}' WITH (FORMAT csv, HEADER)"],
        dict(os.environ),
    )  # fmt: skip
    if child.rc != 0:
        raise BenchError(f"(e) psql \\copy failed ({child.rc}): {child.stderr[-2000:]}")
    loaded = scalar(url, "SELECT count(*) FROM bench_plain")
    if loaded != rows:
        raise BenchError(f"(e) \\copy loaded {loaded} rows, expected {rows}")
    with pg_connect(url) as conn:
        conn.execute("DROP TABLE bench_plain")
    log(f"(e) {child.wall:.2f} s, {child.maxrss_mb:.0f} MB")
    return Step(
        "e", "psql \\copy, plain table (floor)", rows, child.wall, child.wall, child.maxrss_mb, cpu=child.cpu
    )


def naive_step(env: dict, csv_path: Path, limit: int) -> list[Step]:
    log(f"(d) naive update_or_create on {limit:,} rows ...")
    child = run_child([PY, __file__, "--_naive-worker", str(csv_path), "--naive-rows", str(limit)], env)
    if child.rc != 0:
        raise BenchError(f"(d) naive worker exited {child.rc}: {child.stderr[-3000:]}")
    data = json.loads(child.stdout.strip().splitlines()[-1])
    steps = [
        Step("d", "naive update_or_create, creates", data["rows"], data["create_s"],
             child.wall, child.maxrss_mb, note=f"empty table; parse {data['parse_s']:.2f} s untimed"),
        Step("d2", "naive update_or_create, updates", data["rows"], data["update_s"],
             None, None, note="same rows again, all written"),
    ]  # fmt: skip
    log(f"(d) creates {steps[0].rate:,.0f} rows/s, updates {steps[1].rate:,.0f} rows/s")
    return steps


def naive_worker(csv_path: str, limit: int) -> None:
    """Child process of (d): parse a slice with the project's parser, then time per-row update_or_create."""
    import itertools

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finalesync.settings")
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from finalesync.datatypes.base import Record
    from finalesync.datatypes.inventory import DATATYPE, InventoryItem

    start = time.perf_counter()
    with open(csv_path, newline="", encoding="utf-8") as handle:
        parsed = (r for r in DATATYPE.records(csv.reader(handle)) if isinstance(r, Record))
        records = list(itertools.islice(parsed, limit))
    rows = []
    for r in records:
        values = dict(zip(DATATYPE.fields, r.values, strict=True))
        values.update(row_hash=r.row_hash(), extra=r.extra)
        rows.append((r.key, values))
    parse_s = time.perf_counter() - start

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {LIVE_TABLE}")

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
    print(json.dumps({"rows": len(rows), "parse_s": parse_s, "create_s": create_s, "update_s": update_s}))


# --- report ------------------------------------------------------------------------------------------------------
def machine_info(admin_url: str) -> dict:
    info = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    try:
        info["postgres"] = scalar(admin_url, "SHOW server_version")
    except Exception as exc:  # noqa: BLE001
        info["postgres"] = f"? ({exc})"
    try:
        with open("/proc/meminfo") as fh:
            total_kb = int(fh.readline().split()[1])
        info["mem_gib"] = round(total_kb / 1024 / 1024, 1)
    except OSError:
        pass
    return info


def report(
    steps: dict[str, Step], checks: list[tuple[str, bool, str]], info: dict, rows: int, extra: dict
) -> list:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    floor = steps["e"]
    title = (
        f"finalesync inventory sync, {rows:,} rows — {info['cpus']} cores, PostgreSQL {info['postgres']}, "
        f"Python {info['python']}"
    )
    table = Table(title=title)
    for col, justify in (
        ("step", "left"), ("rows", "right"), ("seconds", "right"), ("rows/s", "right"),
        ("× (e) per row", "right"), ("outer wall s", "right"), ("process CPU s", "right"),
        ("peak RSS MB", "right"), ("note", "left"),
    ):  # fmt: skip
        table.add_column(col, justify=justify)
    order = ["a", "b", "c", "d", "d2", "e"]
    for key in order:
        s = steps.get(key)
        if s is None:
            continue
        ratio = floor.rate / s.rate if s.rate else float("inf")
        table.add_row(
            f"({key}) {s.label}",
            f"{s.rows:,}",
            f"{s.seconds:.2f}",
            f"{s.rate:,.0f}",
            f"{ratio:.2f}",
            "" if s.wall is None else f"{s.wall:.2f}",
            "" if s.cpu is None else f"{s.cpu:.2f}",
            "" if s.rss_mb is None else f"{s.rss_mb:.0f}",
            s.note,
        )
    console.print(table)
    console.print(
        f"Report fetch alone (simulator generating + HTTP, into a file): {extra['fetch_s']:.2f} s, "
        f"{extra['fetch_mb']:.1f} MB. Sync seconds are the engine's duration_ms; (d) times only the DB writes."
    )

    a, b, c = steps["a"], steps["b"], steps["c"]
    peak = max(a.rss_mb or 0, b.rss_mb or 0, c.rss_mb or 0)
    targets = [
        ("(a) full sync within 3× of (e)", a.seconds <= TARGET_FULL_VS_COPY * floor.seconds,
         f"{a.seconds:.2f} s vs 3 × {floor.seconds:.2f} = {TARGET_FULL_VS_COPY * floor.seconds:.2f} s "
         f"({a.seconds / floor.seconds:.1f}×)"),
        ("(b) no-change re-sync ≤ 1/3 of (a)", b.seconds <= TARGET_RESYNC_VS_FULL * a.seconds,
         f"{b.seconds:.2f} s vs {a.seconds * TARGET_RESYNC_VS_FULL:.2f} s ({b.seconds / a.seconds:.2f} of (a))"),
        ("(c) 1% re-sync ≤ 1/3 of (a)", c.seconds <= TARGET_RESYNC_VS_FULL * a.seconds,
         f"{c.seconds:.2f} s vs {a.seconds * TARGET_RESYNC_VS_FULL:.2f} s ({c.seconds / a.seconds:.2f} of (a))"),
    ]  # fmt: skip
    if rows >= RSS_TARGET_ROWS:
        targets.append((f"peak RSS < {TARGET_RSS_MB} MB at 1M rows", peak < TARGET_RSS_MB, f"{peak:.0f} MB"))
    else:
        targets.append(
            (f"peak RSS < {TARGET_RSS_MB} MB at 1M rows", None, f"{peak:.0f} MB here (run --million)")
        )

    t = Table(title="Targets")
    t.add_column("target")
    t.add_column("result")
    t.add_column("figures")
    for name, ok, detail in targets:
        verdict = "[green]PASS[/]" if ok else ("[dim]n/a[/]" if ok is None else "[red]MISS[/]")
        t.add_row(name, verdict, detail)
    console.print(t)

    if any(steps[x].phases for x in "abc"):
        ph = Table(title="Where a sync's time goes (seconds, inclusive; calls in brackets)")
        ph.add_column("phase")
        for x in "abc":
            ph.add_column(f"({x})", justify="right")
        for phase, cells in phase_rows(steps):
            ph.add_row(phase, *cells)
        console.print(ph)

    k = Table(title="Correctness checks")
    k.add_column("check")
    k.add_column("result")
    k.add_column("detail")
    for name, ok, detail in checks:
        k.add_row(name, "[green]OK[/]" if ok else "[red]FAIL[/]", detail)
    console.print(k)
    return targets


def phase_rows(steps: dict[str, Step]) -> list[tuple[str, list[str]]]:
    out = []
    for _, name, label in PHASES:
        cells = []
        for x in "abc":
            calls, secs = steps[x].phases.get(name, [0, 0.0])
            cells.append(f"{secs:.2f} [{calls}]" if calls else "–")
        out.append((f"{label} ({name})", cells))
    return out


def markdown(steps, targets, checks, info, rows, extra) -> str:
    floor = steps["e"]
    out = [
        f"{rows:,} rows; load average {info['load_avg']} at start, {info['load_avg_end']} at end; report fetch "
        f"alone {extra['fetch_s']:.2f} s ({extra['fetch_mb']:.1f} MB).",
        "",
        "| step | rows | seconds | rows/s | × (e) per row | outer wall s | process CPU s | peak RSS MB | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for key in ["a", "b", "c", "d", "d2", "e"]:
        s = steps.get(key)
        if s is None:
            continue
        out.append(
            f"| ({key}) {s.label} | {s.rows:,} | {s.seconds:.2f} | {s.rate:,.0f} | {floor.rate / s.rate:.2f} | "
            + ("" if s.wall is None else f"{s.wall:.2f}")
            + " | "
            + ("" if s.cpu is None else f"{s.cpu:.2f}")
            + " | "
            + ("" if s.rss_mb is None else f"{s.rss_mb:.0f}")
            + f" | {s.note.replace('|', '/')} |"
        )
    out += ["", "| target | result | figures |", "| --- | --- | --- |"]
    for name, ok, detail in targets:
        out.append(f"| {name} | {'PASS' if ok else ('n/a' if ok is None else '**MISS**')} | {detail} |")
    if any(steps[x].phases for x in "abc"):
        out += [
            "",
            "| phase (seconds, inclusive; [calls]) | (a) | (b) | (c) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for phase, cells in phase_rows(steps):
            out.append(f"| {phase.replace('_', chr(92) + '_')} | " + " | ".join(cells) + " |")
    out += ["", "| correctness check | result | detail |", "| --- | --- | --- |"]
    for name, ok, detail in checks:
        out.append(f"| {name} | {'OK' if ok else '**FAIL**'} | {detail} |")
    return "\n".join(out) + "\n"


# --- main ---------------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="inventory rows (default 100,000)")
    parser.add_argument("--million", action="store_true", help="use 1,000,000 rows")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="a PostgreSQL URL whose server gets the throw-away database (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--naive-rows", type=int, default=10_000, help="rows for (d), default 10,000")
    parser.add_argument("--profile", metavar="DIR", help="run the syncs under cProfile, .prof files into DIR")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    parser.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown to FILE")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    parser.add_argument(
        "--phases", action="store_true", help="time the sync's phases (runs runsync through a timing wrapper)"
    )
    parser.add_argument(
        "--step-timeout",
        type=float,
        help="kill a sync after this many seconds (default 300 + 0.6 ms per row)",
    )
    parser.add_argument("--_naive-worker", dest="naive_worker", help=argparse.SUPPRESS)
    parser.add_argument("--_runsync-shim", dest="runsync_shim", action="store_true", help=argparse.SUPPRESS)
    if argv is None and "--_runsync-shim" in sys.argv[1:2]:
        runsync_shim(sys.argv[2:])
        return 0
    args = parser.parse_args(argv)
    # A SIGTERM still stops the simulator and drops the database (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.naive_worker:
        naive_worker(args.naive_worker, args.naive_rows)
        return 0

    rows = 1_000_000 if args.million else args.rows
    if rows < 100:
        parser.error("--rows must be at least 100")
    naive_rows = min(args.naive_rows, rows)
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)

    admin_url = args.database_url
    name = f"finalesync_bench_{os.getpid()}"
    url = db_url(admin_url, name)
    try:
        info = machine_info(admin_url)
    except Exception as exc:  # noqa: BLE001
        print(f"cannot reach PostgreSQL at {admin_url}: {exc}", file=sys.stderr)
        return 2
    log(f"{rows:,} rows; database {name}; load average {info['load_avg']}")

    sim: Simulator | None = None
    workdir = Path(tempfile.mkdtemp(prefix="finalesync_bench_"))
    created_db = False
    steps: dict[str, Step] = {}
    checks: list[tuple[str, bool, str]] = []
    try:
        with pg_connect(admin_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created_db = True
        base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("FINALE_", "DATABASE_URL", "DJANGO_"))
        }
        base_env.update(DATABASE_URL=url, LOG_LEVEL="WARNING", PYTHONDONTWRITEBYTECODE="1")
        log("migrating ...")
        migrated = run_child([PY, MANAGE, "migrate", "--noinput"], base_env)
        if migrated.rc != 0:
            raise BenchError(f"migrate failed: {migrated.stderr[-3000:]}")

        log("starting the simulator ...")
        sim = Simulator(rows, args.seed, base_env).start()
        env = {**base_env, **sim.vars}

        # (e) first: it also fetches the CSV once, which (d) parses.
        csv_path = workdir / "inventory.csv"
        fetch_s, fetch_bytes, header = fetch_csv(sim, csv_path)
        log(f"fetched the report: {fetch_bytes / 1e6:.1f} MB in {fetch_s:.2f} s")
        steps["e"] = copy_floor(url, csv_path, header, rows)

        # (a) full sync into the empty table
        opts = SyncOptions(
            url=url,
            timeout=args.step_timeout or 300 + rows * 0.0006,
            profile_dir=profile_dir,
            phases=args.phases,
            workdir=workdir,
        )
        steps["a"] = a = sync_step("a", "full sync into an empty table", env, rows, opts)
        live = scalar(url, f"SELECT count(*) FROM {LIVE_TABLE}")
        r = a.result
        checks.append(
            ("(a) created = N = live rows", r["created"] == rows and live == rows and r["item_count"] == rows,
             f"created={r['created']:,} item_count={r['item_count']:,} live={live:,} N={rows:,}")
        )  # fmt: skip

        # (b) nothing changed
        steps["b"] = b = sync_step("b", "re-sync, no changes", env, rows, opts)
        r = b.result
        ok = r["created"] == r["updated"] == r["deleted"] == 0 and r["unchanged"] == rows
        checks.append(
            ("(b) created=updated=deleted=0, unchanged=N", ok,
             f"created={r['created']} updated={r['updated']} deleted={r['deleted']} unchanged={r['unchanged']:,}")
        )  # fmt: skip

        # (c) 1% changed
        sim.mutate(0.01)
        before_c = datetime.now(UTC)
        time.sleep(0.01)
        steps["c"] = c = sync_step("c", "re-sync, 1% changed", env, rows, opts)
        r = c.result
        share = r["updated"] / rows
        # About 1% of the rows change (each independently): allow four standard deviations either way.
        slack = max(4 * (rows * 0.01 * 0.99) ** 0.5, 3)
        ok = (
            r["created"] == 0 and r["deleted"] == 0 and abs(r["updated"] - rows * 0.01) <= slack
            and r["unchanged"] == rows - r["updated"]
        )  # fmt: skip
        checks.append(
            ("(c) updated ≈ 1%, unchanged the rest", ok,
             f"updated={r['updated']:,} ({share:.2%}) unchanged={r['unchanged']:,} created={r['created']} "
             f"deleted={r['deleted']}")
        )  # fmt: skip
        written = scalar(url, f"SELECT count(*) FROM {LIVE_TABLE} WHERE updated_at > %s", (before_c,))
        born = scalar(url, f"SELECT count(*) FROM {LIVE_TABLE} WHERE created_at > %s", (before_c,))
        checks.append(
            ("(c) rows with updated_at > start of (c) = updated", written == r["updated"] and born == 0,
             f"{written:,} rows stamped, updated={r['updated']:,}, created_at > start: {born}")
        )  # fmt: skip
        c.note = f"{r['updated']:,} updated"

        # (d) naive baseline (empties the live table: it runs last among the table's users)
        for s in naive_step(env, csv_path, naive_rows):
            steps[s.key] = s
    except BenchError as exc:
        print(f"\nbenchmark error: {exc}", file=sys.stderr)
        return 1
    finally:
        if sim is not None:
            sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if created_db and not args.keep_db:
            try:
                with pg_connect(admin_url) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001
                print(f"could not drop database {name}: {exc}", file=sys.stderr)
        elif created_db:
            log(f"kept database {name}")

    info["load_avg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    extra = {"fetch_s": fetch_s, "fetch_mb": fetch_bytes / 1e6}
    targets = report(steps, checks, info, rows, extra)
    print(f"load average: {info['load_avg']} at start, {info['load_avg_end']} at end")
    if profile_dir:
        print(f"profiles (timings above include cProfile overhead): {profile_dir}/sync_[abc].prof")
    if args.markdown:
        Path(args.markdown).write_text(markdown(steps, targets, checks, info, rows, extra))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": rows,
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": info,
                    "fetch": extra,
                    "steps": {
                        k: {"label": s.label, "rows": s.rows, "seconds": s.seconds, "rows_per_s": s.rate,
                            "wall": s.wall, "cpu": s.cpu, "rss_mb": s.rss_mb, "result": s.result}
                        for k, s in steps.items()
                    },
                    "targets": [{"target": n, "pass": ok, "detail": d} for n, ok, d in targets],
                    "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in checks],
                },
                indent=2,
            )
        )  # fmt: skip
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
