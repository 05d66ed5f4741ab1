#!/usr/bin/env python
"""Benchmark of an inventory sync on PostgreSQL and SQLite, side by side (a report, not a test).

    python bench/sync_bench.py [--rows N | --million] [--databases postgresql,sqlite] [--seed S]
                               [--history-syncs H] [--restore-back R] [--naive-rows M] [--no-phases]
                               [--profile DIR] [--json FILE] [--markdown FILE] [--database-url URL]
                               [--step-timeout S] [--keep-db]

The report body is generated once from the simulator's data (bench/bodies.py: byte for byte what
`finalesim` sends), written to a file and served by bench/report_server.py, a separate process that answers
with `sendfile` and a Content-Length: the download costs what a fast network costs, and nothing generates
rows while a sync runs. For each database, on a fresh one (PostgreSQL: `finalesync_bench_<pid>`; SQLite: a
file in a temporary directory), migrated with `manage.py migrate`:

  (e) the floor: PostgreSQL `psql \\copy` of the same rows into a plain table of text columns; SQLite the
      `sqlite3` shell's `.import --csv` (e), and Python `executemany` of rows split beforehand (e2)
  (a) a full sync into an empty table        `runsync inventory --force --json`, its own process
  (b) a re-sync, nothing changed              same
  (c) a re-sync after 1% of the rows changed  the simulator's next mutation event, same
  loop: H-1 more 1% syncs in one process (sync_data_type), then the size of the row history
  restore: `finalesync.restore.restore()` to the state R changing syncs back, checked against that state
  (d) the naive baseline: Django `update_or_create` per row on the first M rows, into the emptied table,
      then again (last: it empties the live table)

Sync seconds are the engine's own `duration_ms`; each child's peak RSS and CPU come from `os.wait4()`. With
phases on (the default) the syncs run through bench/bench_child.py, which times the pipeline's phases and the
SQL statements of `Staging.apply()` (history writes apart from live writes) without changing the engine.
Exit status: 0 when every step ran and every correctness check held (targets met or not: it is a report),
1 when a step failed or a check did not hold, 2 on a usage or setup error.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import secrets
import shutil
import signal
import sqlite3
import statistics
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
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from bodies import ACCOUNT, InventoryBodies  # noqa: E402 - bench/ is not a package

MANAGE = str(ROOT / "manage.py")
CHILD = str(HERE / "bench_child.py")
SERVER = str(HERE / "report_server.py")
PY = sys.executable
DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
LIVE = "finalesync_inventoryitem"
HISTORY = "finalesync_inventoryitem_version"
DATABASES = ("postgresql", "sqlite")

# Targets: issue 10 (speed) and issue 11 (row history). Ratios are against (e), in the same run.
TARGET_FULL = 5.0  # (a) ≤ 5× (e)
TARGET_UNCHANGED = 2.0  # (b) ≤ 2× (e)
TARGET_ONE_PERCENT = 2.5  # (c) ≤ 2.5× (e)
TARGET_HISTORY_SHARE = 0.10  # history write ≤ 10% of (c)
TARGET_HISTORY_SIZE = 2.0  # history ≤ 2× the live table after 100 syncs of 1% of 100,000 rows
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
    timed_out: str | None = None

    def json(self) -> dict:
        lines = [ln for ln in self.stdout.splitlines() if ln.strip().startswith("{")]
        return json.loads(lines[-1]) if lines else {}


@dataclass
class Step:
    key: str
    label: str
    rows: int
    seconds: float
    wall: float | None = None
    rss_mb: float | None = None
    cpu: float | None = None
    note: str = ""
    result: dict = field(default_factory=dict)
    phases: dict = field(default_factory=dict)

    def per_row_vs(self, floor: Step) -> float:
        return (self.seconds / self.rows) / (floor.seconds / floor.rows)

    def as_json(self) -> dict:
        return {
            "label": self.label,
            "rows": self.rows,
            "seconds": self.seconds,
            "wall": self.wall,
            "rss_mb": self.rss_mb,
            "cpu": self.cpu,
            "note": self.note,
            "result": self.result,
            "phases": self.phases,
        }


# The floor is what every ratio divides by: timed in rounds (a fresh table each), the median counts.
FLOOR_ROUNDS = 3


def _floor_step(label: str, rows: int, rounds: list) -> Step:
    ordered = sorted(rounds, key=lambda child: child.wall)
    median = ordered[len(ordered) // 2]
    note = f"median of {len(rounds)} rounds: " + ", ".join(f"{child.wall:.2f}" for child in rounds) + " s"
    return Step("e", label, rows, median.wall, median.wall, median.maxrss_mb, median.cpu, note=note)


@dataclass
class DbRun:
    """Everything measured on one database."""

    database: str
    steps: dict[str, Step] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    loop: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    restore: dict = field(default_factory=dict)
    error: str | None = None

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, bool(ok), detail))
        if not ok:
            log(f"CHECK FAILED: {name}: {detail}")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------------------------------
# Linux charges a child the peak RSS of the address space it was forked from (exec records the old mm's
# high-water mark in the child's rusage), so a child forked by this process, which holds the report's rows,
# would report at least this process's peak as its own. Children are therefore forked by a tiny spawner
# started before anything big is loaded: their wait4() peak RSS is their own (floor: ~10 MB of bare Python).
SPAWNER = r"""
import json, os, sys
for line in sys.stdin:
    req = json.loads(line)
    out = os.open(req["stdout"], os.O_WRONLY | os.O_TRUNC)
    err = os.open(req["stderr"], os.O_WRONLY | os.O_TRUNC)
    pid = os.fork()
    if pid == 0:
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0); os.dup2(out, 1); os.dup2(err, 2)
            os.chdir(req["cwd"])
            os.execvpe(req["cmd"][0], req["cmd"], req["env"])
        finally:
            os._exit(127)
    os.close(out); os.close(err)
    print(json.dumps({"pid": pid}), flush=True)
    _, status, ru = os.wait4(pid, 0)
    print(json.dumps({"status": status, "maxrss_kb": ru.ru_maxrss, "cpu": ru.ru_utime + ru.ru_stime}), flush=True)
"""


class Spawner:
    """Runs commands one at a time in a small process of its own (see SPAWNER)."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-c", SPAWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.lock = threading.Lock()

    def run(
        self, cmd: list[str], env: dict, out_path: str, err_path: str, on_pid
    ) -> tuple[int, float, float]:
        """(exit status as waitstatus, peak RSS KiB, CPU seconds)."""
        with self.lock:
            request = {"cmd": cmd, "env": env, "cwd": str(ROOT), "stdout": out_path, "stderr": err_path}
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            started = json.loads(self.proc.stdout.readline())
            on_pid(started["pid"])
            done = json.loads(self.proc.stdout.readline())
        return done["status"], done["maxrss_kb"], done["cpu"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


SPAWN: Spawner | None = None


def run_child(cmd: list[str], env: dict, *, timeout: float, diagnose=None) -> Child:
    """Run `cmd` to completion; return its output, wall time, CPU time and its own peak RSS (wait4). It is
    killed after `timeout` seconds; `timed_out` then says so, with `diagnose()` taken just before the kill."""
    seen: list[str] = []
    timers: list[threading.Timer] = []

    def expire(pid: int) -> None:
        reason = f"no result after {timeout:g} s"
        if diagnose is not None:
            try:
                reason += "\n" + diagnose()
            except Exception as exc:  # noqa: BLE001 - a diagnostic only
                reason += f"\n(no diagnostics: {exc})"
        seen.append(reason)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def watch(pid: int) -> None:
        timer = threading.Timer(timeout, expire, args=(pid,))
        timer.daemon = True
        timer.start()
        timers.append(timer)

    with tempfile.NamedTemporaryFile() as out, tempfile.NamedTemporaryFile() as err:
        start = time.perf_counter()
        try:
            status, maxrss_kb, cpu = SPAWN.run(cmd, env, out.name, err.name, watch)
        finally:
            for timer in timers:
                timer.cancel()
                timer.join()
        wall = time.perf_counter() - start
        return Child(
            rc=os.waitstatus_to_exitcode(status),
            stdout=Path(out.name).read_bytes().decode("utf-8", "replace"),
            stderr=Path(err.name).read_bytes().decode("utf-8", "replace"),
            wall=wall,
            maxrss_mb=maxrss_kb * 1024 / 1e6,  # KiB on Linux; MB (10^6 bytes) as the target is stated
            cpu=cpu,
            timed_out=seen[0] if seen else None,
        )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ReportServer:
    """bench/report_server.py in its own process, serving `file` on a free loopback port."""

    def __init__(self, file: Path):
        self.file = file
        self.key = "bench-key"
        self.secret = "bench-secret-" + secrets.token_hex(8)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    def start(self) -> ReportServer:
        cmd = [PY, SERVER, str(self.file), "--account", ACCOUNT, "--key", self.key, "--secret", self.secret]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            # A benchmark started in the background inherits an ignored SIGINT; stop() relies on it.
            preexec_fn=_default_sigint,  # noqa: PLW1509 - no other threads run yet
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("PORT="):
            self.stop()
            raise BenchError(f"the report server did not start: {line!r}")
        self.port = int(line.split("=", 1)[1])
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def report_url(self) -> str:
        return f"{self.base_url}/{ACCOUNT}/doc/report/pivotTableStream/100001/Report.csv?format=csv"

    def env(self) -> dict:
        return {
            "FINALE_BASE_URL": self.base_url,
            "FINALE_ACCOUNT": ACCOUNT,
            "FINALE_API_KEY": self.key,
            "FINALE_API_SECRET": self.secret,
            "FINALE_REPORT_URL_INVENTORY": self.report_url,
        }

    def fetch(self) -> tuple[float, int]:
        """Download the report once, as fast as Python reads (seconds, bytes): the network's share."""
        token = base64.b64encode(f"{self.key}:{self.secret}".encode()).decode("ascii")
        request = urllib.request.Request(self.report_url, headers={"Authorization": "Basic " + token})
        size = 0
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 - loopback
            while chunk := response.read(1 << 20):
                size += len(chunk)
        return time.perf_counter() - start, size

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# --- databases --------------------------------------------------------------------------------------------------
def pg_connect(url: str):
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(urlunsplit(("postgresql", *parts[1:])), autocommit=True)


class Postgres:
    name = "postgresql"
    label = "PostgreSQL"
    floor_label = "psql \\copy into a plain table of text columns"

    def __init__(self, admin_url: str, workdir: Path):
        self.admin_url = admin_url
        self.db_name = f"finalesync_bench_{os.getpid()}"
        parts = urlsplit(admin_url)
        self.url = urlunsplit((parts.scheme, parts.netloc, "/" + self.db_name, parts.query, parts.fragment))
        self.created = False

    def version(self) -> str:
        return self.scalar("SHOW server_version", admin=True)

    def create(self) -> None:
        with pg_connect(self.admin_url) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.created = True

    def drop(self) -> None:
        if self.created:
            with pg_connect(self.admin_url) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self.created = False

    def scalar(self, sql: str, params=(), *, admin: bool = False):
        with pg_connect(self.admin_url if admin else self.url) as conn:
            return conn.execute(sql, params).fetchone()[0]

    def rows(self, sql: str, params=()) -> list:
        with pg_connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()

    def execute(self, sql: str) -> None:
        with pg_connect(self.url) as conn:
            conn.execute(sql)

    def activity(self) -> str:
        rows = self.rows(
            "SELECT pid, state, wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) "
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return "\n".join("  " + " | ".join(str(v) for v in row) for row in rows) or "  (none)"

    def floors(self, csv_path: Path, width: int, rows: int, timeout: float) -> list[Step]:
        psql = shutil.which("psql")
        if psql is None:
            raise BenchError("psql is not on PATH (apt-get install postgresql-client)")
        path = str(csv_path).replace("'", "''")
        libpq = urlunsplit(("postgresql", *urlsplit(self.url)[1:]))
        rounds = []
        for _ in range(FLOOR_ROUNDS):
            self.execute("DROP TABLE IF EXISTS bench_plain")
            self.execute(f"CREATE TABLE bench_plain ({', '.join(f'c{i} text' for i in range(width))})")
            child = run_child(
                [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", libpq, "-c",
                 f"\\copy bench_plain FROM '{path}' WITH (FORMAT csv, HEADER)"],
                dict(os.environ), timeout=timeout,
            )  # fmt: skip
            if child.rc != 0:
                raise BenchError(f"(e) psql \\copy failed ({child.rc}): {child.stderr[-2000:]}")
            loaded = self.scalar("SELECT count(*) FROM bench_plain")
            self.execute("DROP TABLE bench_plain")
            if loaded != rows:
                raise BenchError(f"(e) \\copy loaded {loaded} rows, expected {rows}")
            rounds.append(child)
        return [_floor_step("psql \\copy (the floor)", rows, rounds)]

    def sizes(self) -> dict:
        """Bytes of the live table and of its row history (heap + indexes + TOAST), as left and compacted."""
        out = {}
        for when in ("as_left", "compacted"):
            if when == "compacted":
                self.execute(f"VACUUM FULL {LIVE}")
                self.execute(f"VACUUM FULL {HISTORY}")
            out[when] = {
                name: {
                    "total": self.scalar("SELECT pg_total_relation_size(%s)", (table,)),
                    "heap": self.scalar("SELECT pg_relation_size(%s)", (table,)),
                    "indexes": self.scalar("SELECT pg_indexes_size(%s)", (table,)),
                }
                for name, table in (("live", LIVE), ("history", HISTORY))
            }
        out["rows"] = {
            "live": self.scalar(f"SELECT count(*) FROM {LIVE}"),
            "history": self.scalar(f"SELECT count(*) FROM {HISTORY}"),
        }
        return out


class Sqlite:
    name = "sqlite"
    label = "SQLite"
    floor_label = "sqlite3 shell .import --csv into a plain table of text columns"

    def __init__(self, admin_url: str, workdir: Path):
        self.path = workdir / "bench.sqlite3"
        self.floor_path = workdir / "floor.sqlite3"
        self.url = f"sqlite:///{self.path}"
        self.workdir = workdir

    def version(self) -> str:
        return sqlite3.sqlite_version

    def create(self) -> None:
        for p in (self.path, self.floor_path):
            for suffix in ("", "-wal", "-shm"):
                Path(str(p) + suffix).unlink(missing_ok=True)

    def drop(self) -> None:
        self.create()

    def _connect(self):
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        return conn

    def scalar(self, sql: str, params=()):
        with self._connect() as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchone()[0]

    def rows(self, sql: str, params=()) -> list:
        with self._connect() as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()

    def execute(self, sql: str) -> None:
        conn = self._connect()
        try:
            conn.execute(sql)
        finally:
            conn.close()

    def activity(self) -> str:
        return "  (SQLite: no session list)"

    def floors(self, csv_path: Path, width: int, rows: int, timeout: float) -> list[Step]:
        cli = shutil.which("sqlite3")
        if cli is None:
            raise BenchError("the sqlite3 shell is not on PATH (apt-get install sqlite3)")
        db = str(self.floor_path)
        cols = ", ".join(f"c{i} text" for i in range(width))
        rounds = []
        for _ in range(FLOOR_ROUNDS):
            for suffix in ("", "-wal", "-shm"):
                Path(db + suffix).unlink(missing_ok=True)
            # The engine's connections use WAL (kept in the file) and synchronous=NORMAL (per connection).
            made = run_child([cli, db, "PRAGMA journal_mode=WAL;", f"CREATE TABLE bench_plain ({cols});"],
                             dict(os.environ), timeout=60)  # fmt: skip
            if made.rc != 0:
                raise BenchError(f"(e) sqlite3 could not create the floor table: {made.stderr[-2000:]}")
            child = run_child(
                [cli, "-cmd", "PRAGMA synchronous=NORMAL;", db, f".import --csv --skip 1 {csv_path} bench_plain"],
                dict(os.environ), timeout=timeout,
            )  # fmt: skip
            if child.rc != 0 or child.stderr.strip():
                raise BenchError(f"(e) sqlite3 .import failed ({child.rc}): {child.stderr[-2000:]}")
            conn = sqlite3.connect(db)
            loaded = conn.execute("SELECT count(*) FROM bench_plain").fetchone()[0]
            conn.execute("DROP TABLE bench_plain")
            conn.close()
            if loaded != rows:
                raise BenchError(f"(e) .import loaded {loaded} rows, expected {rows}")
            rounds.append(child)
        steps = [_floor_step("sqlite3 .import (the floor)", rows, rounds)]
        py = run_child([PY, CHILD, "sqlite-floor", "--csv", str(csv_path), "--db", db], dict(os.environ),
                       timeout=timeout)  # fmt: skip
        if py.rc != 0:
            raise BenchError(f"(e2) the executemany floor failed: {py.stderr[-2000:]}")
        data = py.json()
        if data.get("rows") != rows:
            raise BenchError(f"(e2) executemany loaded {data.get('rows')} rows, expected {rows}")
        steps.append(
            Step("e2", "Python executemany of pre-split rows", rows, data["seconds"], py.wall, py.maxrss_mb,
                 py.cpu, note="csv split before the clock starts")
        )  # fmt: skip
        return steps

    def sizes(self) -> dict:
        """Bytes of the live table and its row history with their indexes (dbstat pages), as left and after
        VACUUM."""

        def measure() -> dict:
            with self._connect() as conn:
                return {
                    name: {
                        "total": conn.execute(
                            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
                            "(SELECT name FROM sqlite_master WHERE tbl_name = ?)",
                            (table,),
                        ).fetchone()[0],
                        "heap": conn.execute(
                            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?", (table,)
                        ).fetchone()[0],
                    }
                    for name, table in (("live", LIVE), ("history", HISTORY))
                }

        out = {"as_left": measure()}
        self.execute("VACUUM")
        out["compacted"] = measure()
        for part in out.values():
            for entry in part.values():
                entry["indexes"] = entry["total"] - entry["heap"]
        out["rows"] = {
            "live": self.scalar(f"SELECT count(*) FROM {LIVE}"),
            "history": self.scalar(f"SELECT count(*) FROM {HISTORY}"),
        }
        return out


# --- the run on one database --------------------------------------------------------------------------------------
@dataclass
class Plan:
    rows: int
    seed: int
    history_syncs: int
    restore_back: list[int]
    naive_rows: int
    phases: bool
    profile_dir: Path | None
    step_timeout: float
    workdir: Path
    report: Path
    plain: Path
    prototypes: str = ""  # engine changes tried out in every child (bench_child.PROTOTYPES)
    restore_prototypes: str = ""  # tried out in a second restore
    restore_timeout: float = 0.0


class Bench:
    def __init__(self, plan: Plan, db, server: ReportServer, bodies: InventoryBodies, base_env: dict):
        self.plan = plan
        self.db = db
        self.server = server
        self.bodies = bodies
        self.env = {**base_env, **server.env(), "DATABASE_URL": db.url, "BENCH_PROTOTYPES": plan.prototypes}
        self.out = DbRun(db.name)

    # --- children -------------------------------------------------------------------------------------------
    def child(self, args: list[str], *, name: str, timeout: float, env: dict | None = None) -> Child:
        cmd = [PY]
        if self.plan.profile_dir is not None:
            cmd += ["-m", "cProfile", "-o", str(self.plan.profile_dir / f"{self.db.name}_{name}.prof")]
        cmd += [CHILD, *args]
        return run_child(
            cmd,
            {**self.env, **(env or {})},
            timeout=timeout,
            diagnose=lambda: "database sessions just before:\n" + self.db.activity(),
        )

    def sync_step(self, key: str, label: str) -> Step:
        env_phases = None
        if self.plan.phases:
            env_phases = self.plan.workdir / f"phases_{self.db.name}_{key}.json"
            env_phases.unlink(missing_ok=True)
        log(f"[{self.db.name}] ({key}) {label} ...")
        saved = self.env.get("BENCH_PHASES")
        if env_phases is not None:
            self.env["BENCH_PHASES"] = str(env_phases)
        try:
            child = self.child(
                ["runsync", "inventory", "--force", "--json"],
                name=f"sync_{key}",
                timeout=self.plan.step_timeout,
            )
        finally:
            self.env.pop("BENCH_PHASES", None)
            if saved is not None:
                self.env["BENCH_PHASES"] = saved
        if child.timed_out is not None:
            raise BenchError(f"({key}) runsync was killed (--step-timeout): {child.timed_out}")
        result = child.json()
        if child.rc != 0 or not result:
            raise BenchError(
                f"({key}) runsync exited {child.rc}\nstdout: {child.stdout[-2000:]}\nstderr: {child.stderr[-3000:]}"
            )
        if result.get("outcome") != "success":
            raise BenchError(f"({key}) sync outcome {result.get('outcome')}: {result.get('error')}")
        step = Step(key, label, self.plan.rows, result["duration_ms"] / 1000, child.wall, child.maxrss_mb,
                    child.cpu, result=result)  # fmt: skip
        if env_phases is not None and env_phases.exists():
            step.phases = json.loads(env_phases.read_text())
        log(
            f"[{self.db.name}] ({key}) {step.seconds:.2f} s engine, {child.wall:.2f} s outer, "
            f"{child.maxrss_mb:.0f} MB; created={result['created']} updated={result['updated']} "
            f"deleted={result['deleted']} unchanged={result['unchanged']}"
        )
        self.out.steps[key] = step
        return step

    def checksum(self) -> dict:
        child = self.child(["checksum"], name="checksum", timeout=self.plan.step_timeout)
        if child.rc != 0:
            raise BenchError(f"checksum failed: {child.stderr[-2000:]}")
        return child.json()

    # --- the steps --------------------------------------------------------------------------------------------
    def run(self) -> DbRun:
        plan, db, out = self.plan, self.db, self.out
        n = plan.rows
        db.create()
        log(f"[{db.name}] migrating ...")
        migrated = run_child([PY, MANAGE, "migrate", "--noinput"], self.env, timeout=600)
        if migrated.rc != 0:
            raise BenchError(f"migrate failed: {migrated.stderr[-3000:]}")
        self.bodies.reset()
        self.bodies.write(plan.report)

        log(f"[{db.name}] (e) floor ...")
        for step in db.floors(plan.plain, len(self.bodies_header()), n, plan.step_timeout):
            out.steps[step.key] = step
            log(f"[{db.name}] ({step.key}) {step.seconds:.2f} s {f'({step.note})' if step.note else ''}")

        # (a) full sync into the empty table
        r = self.sync_step("a", "full sync into an empty table").result
        live = db.scalar(f"SELECT count(*) FROM {LIVE}")
        versions = db.scalar(f"SELECT count(*) FROM {HISTORY} WHERE seq = 1")
        out.check(
            "(a) created = N = live rows = history rows at seq 1; nothing updated or deleted",
            r["created"] == n == live == r["item_count"] == versions and r["updated"] == r["deleted"] == 0,
            f"created={r['created']:,} item_count={r['item_count']:,} live={live:,} history={versions:,} N={n:,}",
        )
        targets = self.restore_targets()
        expected_states = {}
        if 1 in targets.values():
            expected_states[1] = self.checksum()

        # (b) nothing changed
        stamp = db.scalar(f"SELECT max(updated_at) FROM {LIVE}")
        history_before = db.scalar(f"SELECT count(*) FROM {HISTORY}")
        r = self.sync_step("b", "re-sync, nothing changed").result
        touched = db.scalar(f"SELECT count(*) FROM {LIVE} WHERE updated_at > %s", (stamp,))
        history_after = db.scalar(f"SELECT count(*) FROM {HISTORY}")
        out.check(
            "(b) created = updated = deleted = 0, unchanged = N; no row written, no history written",
            r["created"] == r["updated"] == r["deleted"] == 0 and r["unchanged"] == n and touched == 0
            and history_after == history_before,
            f"created={r['created']} updated={r['updated']} deleted={r['deleted']} unchanged={r['unchanged']:,} "
            f"rows stamped={touched} history rows {history_before:,} → {history_after:,}",
        )  # fmt: skip

        # (c) 1% changed: the simulator's next mutation event
        changed = self.bodies.mutate()
        self.bodies.write(plan.report)
        expected = {self.bodies.dataset.sku(i) for i in changed}
        stamp = db.scalar(f"SELECT max(updated_at) FROM {LIVE}")
        step = self.sync_step("c", "re-sync, 1% changed")
        r = step.result
        stamped = {k for (k,) in db.rows(f"SELECT natural_key FROM {LIVE} WHERE updated_at > %s", (stamp,))}
        born = db.scalar(f"SELECT count(*) FROM {LIVE} WHERE created_at > %s", (stamp,))
        seq = self.history_seq()
        in_history = {k for (k,) in db.rows(f"SELECT natural_key FROM {HISTORY} WHERE seq = %s", (seq,))}
        out.check(
            "(c) updated = the simulator's changed rows exactly; created = deleted = 0; unchanged = the rest",
            r["updated"] == len(expected) and r["created"] == r["deleted"] == 0
            and r["unchanged"] == n - len(expected),
            f"updated={r['updated']:,} (mutation changed {len(expected):,} = {len(expected) / n:.2%}) "
            f"created={r['created']} deleted={r['deleted']} unchanged={r['unchanged']:,}",
        )  # fmt: skip
        out.check(
            "(c) rows with a new updated_at = history rows of this sync = the changed keys; no new created_at",
            stamped == expected == in_history and born == 0,
            f"{len(stamped):,} stamped, {len(in_history):,} in history at seq {seq}, {len(expected):,} changed; "
            f"missing {len(expected - stamped)}, extra {len(stamped - expected)}; created_at later: {born}",
        )
        step.note = f"{r['updated']:,} updated"
        if 2 in targets.values():
            expected_states[2] = self.checksum()

        if plan.history_syncs > 1:
            self.loop(sorted(t for t in targets.values() if t > 2))
            expected_states.update({int(k): v for k, v in out.loop.get("checksums", {}).items()})
        log(f"[{db.name}] sizes of the live table and the row history ...")
        out.sizes = db.sizes()
        out.sizes["changing_syncs"] = plan.history_syncs
        out.restore = {"targets": []}
        for back, target in targets.items():
            self.restore(back, target, expected_states.get(target))
        if plan.naive_rows:
            self.naive()
        return out

    def bodies_header(self) -> list[str]:
        from finalesync.simulator.data import INVENTORY_HEADER

        return INVENTORY_HEADER

    def latest_seq(self) -> int:
        # (a) is seq 1, (c) seq 2, each loop sync one more.
        return 1 + max(1, self.plan.history_syncs)

    def restore_targets(self) -> dict[int, int]:
        """{syncs back: history seq} of each restore to measure (seq 1 is the full sync's state)."""
        latest = self.latest_seq()
        return {back: latest - back for back in self.plan.restore_back if 1 <= latest - back < latest}

    def loop(self, checksum_seqs: list[int]) -> None:
        plan, db, out = self.plan, self.db, self.out
        more = plan.history_syncs - 1
        log(f"[{db.name}] loop: {more} more 1% syncs in one process ...")
        child = self.child(
            ["loop", "--rows", str(plan.rows), "--seed", str(plan.seed), "--events", str(self.bodies.version),
             "--syncs", str(more), "--report", str(plan.report),
             "--checksum-seqs", ",".join(map(str, checksum_seqs))],
            name="loop", timeout=plan.step_timeout * max(1, more),
        )  # fmt: skip
        if child.timed_out or child.rc != 0:
            raise BenchError(f"the loop failed ({child.rc}): {child.timed_out or ''}\n{child.stderr[-3000:]}")
        out.loop = child.json()
        out.loop.update(wall=child.wall, rss_mb=child.maxrss_mb, cpu=child.cpu)
        syncs = out.loop["syncs"]
        bad = [s for s in syncs if s["outcome"] != "success"]
        wrong = [
            s for s in syncs
            if s["updated"] != s["expected_updated"] or s["created"] or s["deleted"]
            or s["unchanged"] != plan.rows - s["expected_updated"]
        ]  # fmt: skip
        out.check(
            f"loop: {more} more 1% syncs succeeded, each updated exactly the rows its mutation changed",
            len(syncs) == more and not bad and not wrong,
            f"{len(syncs)} syncs, {len(bad)} failed, {len(wrong)} with other counts"
            + (f"; first failure: {bad[0]['error']}" if bad else ""),
        )

    def restore(self, back: int, target: int, expected: dict | None) -> None:
        """Restore to `target` (`back` changing syncs before the last sync) as the engine is; with
        --restore-prototype again with those prototypes. A restore that finished is undone first (a restore to
        the seq it started from), so every attempt starts from the state the last sync left."""
        plan, db, out = self.plan, self.db, self.out
        # Rows that differ between the state at `target` and the last sync's: those changed by the mutation
        # events after it (event v made seq v + 1).
        differ = set()
        for version in range(target, self.latest_seq()):
            differ.update(self.bodies.changed_by(version))
        entry = {"back": back, "target": target, "expected_updated": len(differ), "attempts": []}
        out.restore["targets"].append(entry)
        variants = [("as is", plan.prototypes)]
        if plan.restore_prototypes:
            variants.append((f"with {plan.restore_prototypes}", plan.restore_prototypes))
        for label, prototypes in variants:
            attempt = self.restore_attempt(label, back, target, prototypes, expected, len(differ))
            entry["attempts"].append(attempt)
            if attempt["outcome"] == "success":
                log(f"[{db.name}] undo: restore to seq {attempt['from_seq']} (not timed) ...")
                undo = self.child(["restore", "--seq", str(attempt["from_seq"])], name="undo",
                                  timeout=plan.step_timeout)  # fmt: skip
                if undo.rc != 0 or undo.json().get("outcome") != "success":
                    raise BenchError(f"the undo restore failed: {undo.stderr[-2000:]}")

    def restore_attempt(
        self, label: str, back: int, target: int, prototypes: str, expected, differ: int
    ) -> dict:
        plan, db, out = self.plan, self.db, self.out
        latest = self.history_seq()
        log(
            f"[{db.name}] restore {label} from seq {latest} to seq {target} (timeout {plan.restore_timeout:g} s) ..."
        )
        child = self.child(["restore", "--seq", str(target)], name=f"restore_{back}_{label.split()[0]}",
                           timeout=plan.restore_timeout, env={"BENCH_PROTOTYPES": prototypes})  # fmt: skip
        base = {"label": label, "prototypes": prototypes, "from_seq": latest, "to_seq": target,
                "wall_outer": child.wall, "rss_mb": child.maxrss_mb, "cpu": child.cpu}  # fmt: skip
        if child.timed_out:
            log(f"[{db.name}] restore {label} killed after {plan.restore_timeout:g} s")
            out.check(f"restore {back} back {label}: finished within {plan.restore_timeout:g} s", False,
                      child.timed_out.replace("\n", " / ")[:600])  # fmt: skip
            return {**base, "outcome": "killed", "killed_after": plan.restore_timeout}
        if child.rc != 0:
            raise BenchError(f"the restore failed ({child.rc}):\n{child.stderr[-3000:]}")
        res = {**child.json(), **base}
        after = res["after"]
        log(
            f"[{db.name}] restore {label}: {res['duration_ms'] / 1000:.2f} s engine, updated {res['updated']:,}"
        )
        out.check(
            f"restore {back} back {label}: succeeded, updating exactly the rows changed since seq {target}",
            res["outcome"] == "success"
            and res["updated"] == differ
            and res["created"] == res["deleted"] == 0,
            f"outcome={res['outcome']} updated={res['updated']:,} (changed since: {differ:,}) "
            f"created={res['created']} deleted={res['deleted']}"
            + (f" error={res['error']}" if res["error"] else ""),
        )
        out.check(
            f"restore {back} back {label}: rows = the state synced at seq {target} (count and digest of all values)",
            expected is not None and after == expected,
            f"after: {after['count']:,} rows, digest {after['checksum'][:12]}…; then: "
            + (
                f"{expected['count']:,} rows, digest {expected['checksum'][:12]}…"
                if expected
                else "not recorded"
            ),
        )
        return res

    def history_seq(self) -> int:
        return self.db.scalar(
            "SELECT history_seq FROM finalesync_datatypeconfig WHERE data_type = 'inventory'"
        )

    def naive(self) -> None:
        plan, db, out = self.plan, self.db, self.out
        m = min(plan.naive_rows, plan.rows)
        log(f"[{db.name}] (d) naive update_or_create on {m:,} rows ...")
        child = run_child([PY, CHILD, "naive", "--csv", str(plan.plain), "--rows", str(m)], self.env,
                          timeout=plan.step_timeout)  # fmt: skip
        if child.rc != 0:
            raise BenchError(f"(d) naive worker exited {child.rc}: {child.stderr[-3000:]}")
        data = child.json()
        out.steps["d"] = Step("d", "naive update_or_create, creates", data["rows"], data["create_s"], child.wall,
                              child.maxrss_mb, child.cpu,
                              note=f"empty table; parse {data['parse_s']:.2f} s untimed")  # fmt: skip
        out.steps["d2"] = Step("d2", "naive update_or_create, updates", data["rows"], data["update_s"],
                               note="same rows again, all written")  # fmt: skip
        log(f"[{db.name}] (d) creates {data['create_s']:.2f} s, updates {data['update_s']:.2f} s")


# --- figures ------------------------------------------------------------------------------------------------------
# Rows of the phase table: (label, call paths under the sync's root whose seconds are added up).
PHASE_ROWS = (
    ("live rows' keys and line digests (passing over unchanged lines)", ("Staging.pass_over",)),
    ("download + parse + stage", ("FinaleClient._get", "ReportDataType.read_header", "Staging.__enter__",
                                  "Staging.load")),
    ("· HTTP request until the headers", ("FinaleClient._get",)),
    ("· body reads through the client (the download)", ("Staging.load/ReportBody.read",)),
    ("· record digests (blake2b per record)", ("Staging.load/line_digests",)),
    ("· pyarrow read_csv of the pieces", ("Staging.load/ReportReader._parse", "Staging.load/ReportReader._parse_python")),
    ("· raw fields: key, NUL check, extras as JSON", ("Staging.load/ReportDataType.raw_fields",)),
    ("· value checks and cleaning (finish)", ("Staging.load/DataType.finish",)),
    ("· write to staging (pyarrow CSV + COPY / executemany)", ("Staging.load/Staging._write",)),
    ("· ANALYZE (PG) / index (SQLite) of the staging table", ("Staging.load/Staging.index",)),
    ("· commit of the staging transaction", ("Staging.load/COMMIT",)),
    ("· rest of load (blank-row filter, Arrow glue, header, temp table)", None),
    ("diff: duplicates, counts, value-by-value compare", ("Staging.drop_duplicates", "Staging.good_count",
                                                         "Staging.diff")),
    ("· of which the emptied-column evidence", ("Staging.diff/Staging._emptied",)),
    ("checks (safety)", ("check_readable", "check_changes")),
    ("apply incl. history + commit", ("Staging.apply", "COMMIT")),
    ("· history write: INSERT INTO …_version", ("Staging.apply/SQL INSERT history",)),
    ("· live DELETE + UPDATE + INSERT", ("Staging.apply/SQL DELETE live", "Staging.apply/SQL UPDATE live",
                                        "Staging.apply/SQL INSERT live")),
    ("· COMMIT", ("COMMIT",)),
    ("verify (live row count)", ("Staging.live_count",)),
    ("run bookkeeping: run row, lock, record + receivers, drop temp tables", ("Run.__init__", "Run.__enter__",
                                                                             "Run._finish", "Staging.__exit__")),
    ("unattributed (config rows, Python between phases)", None),
    ("sync_data_type, whole call", ("",)),
)  # fmt: skip
LOAD_CHILDREN = tuple(
    p
    for label, paths in PHASE_ROWS
    if label.startswith("·")
    for p in (paths or ())
    if p.startswith("Staging.load/")
)
LOAD_REST = next(label for label, _ in PHASE_ROWS if label.startswith("· rest of load"))
UNATTRIBUTED = next(label for label, _ in PHASE_ROWS if label.startswith("unattributed"))


def phase_seconds(phases: dict, root: str = "sync_data_type") -> dict[str, float]:
    """Seconds per PHASE_ROWS label from one sync's call paths."""

    def total(paths) -> float:
        return sum(phases.get(f"{root}/{p}" if p else root, [0, 0.0])[1] for p in paths)

    out: dict[str, float] = {}
    for label, paths in PHASE_ROWS:
        if paths is not None:
            out[label] = total(paths)
    load_rest = total(
        ("FinaleClient._get", "ReportDataType.read_header", "Staging.__enter__", "Staging.load")
    )
    load_rest -= total(LOAD_CHILDREN) + total(("FinaleClient._get",))
    out[LOAD_REST] = load_rest
    top = [paths for label, paths in PHASE_ROWS if paths and not label.startswith("·") and paths != ("",)]
    out[UNATTRIBUTED] = total(("",)) - sum(total(p) for p in top)
    return out


def history_share(step_or_sync) -> float | None:
    phases = step_or_sync.phases if isinstance(step_or_sync, Step) else step_or_sync["phases"]
    seconds = step_or_sync.seconds if isinstance(step_or_sync, Step) else step_or_sync["duration_ms"] / 1000
    if not phases:
        return None
    return phase_seconds(phases)["· history write: INSERT INTO …_version"] / seconds


def size_ratio(sizes: dict, when: str = "compacted") -> float:
    part = sizes[when]
    return part["history"]["total"] / part["live"]["total"]


def targets(run: DbRun, rows: int) -> list[tuple[str, bool | None, str]]:
    s = run.steps
    out: list[tuple[str, bool | None, str]] = []
    if "e" not in s:
        return out
    e = s["e"]
    for key, limit, name in (("a", TARGET_FULL, "(a) full sync ≤ 5× (e)"),
                             ("b", TARGET_UNCHANGED, "(b) nothing changed ≤ 2× (e)"),
                             ("c", TARGET_ONE_PERCENT, "(c) 1% changed ≤ 2.5× (e)")):  # fmt: skip
        if key in s:
            ratio = s[key].seconds / e.seconds
            out.append((name, ratio <= limit, f"{s[key].seconds:.2f} s / {e.seconds:.2f} s = {ratio:.1f}×"))
    if "c" in s:
        share = history_share(s["c"])
        if share is None:
            out.append(("history write ≤ 10% of (c)", None, "run with phases"))
        else:
            loop = [x for x in (history_share(y) for y in run.loop.get("syncs", [])) if x is not None]
            extra = f"; loop median {statistics.median(loop):.1%} over {len(loop)} syncs" if loop else ""
            out.append(
                ("history write ≤ 10% of (c)", share <= TARGET_HISTORY_SHARE, f"{share:.1%} of (c){extra}")
            )
    peak = max((s[k].rss_mb or 0) for k in "abc" if k in s) if any(k in s for k in "abc") else 0
    out.append((
        f"peak RSS of a sync < {TARGET_RSS_MB} MB at 1M rows",
        (peak < TARGET_RSS_MB) if rows >= RSS_TARGET_ROWS else None,
        f"{peak:.0f} MB" + ("" if rows >= RSS_TARGET_ROWS else " (target is at 1M rows)"),
    ))  # fmt: skip
    if run.sizes:
        ratio = size_ratio(run.sizes)
        syncs = run.sizes.get("changing_syncs", 0)
        applies = rows == 100_000 and syncs >= 100
        out.append((
            "history ≤ 2× live table after 100 syncs of 1% of 100k rows",
            (ratio <= TARGET_HISTORY_SIZE) if applies else None,
            f"{ratio:.2f}× compacted, {size_ratio(run.sizes, 'as_left'):.2f}× as left, after {syncs} syncs"
            + ("" if applies else " (target is at 100k rows, 100 syncs)"),
        ))  # fmt: skip
    for entry in run.restore.get("targets", []):
        out.append((
            f"restore to a point {entry['back']} changing syncs back: time",
            None,
            "; ".join(attempt_text(a) for a in entry["attempts"]),
        ))  # fmt: skip
    return out


def attempt_text(a: dict) -> str:
    if a["outcome"] == "killed":
        return f"{a['label']}: killed unfinished after {a['killed_after']:g} s"
    if a["outcome"] != "success":
        return f"{a['label']}: {a['outcome']} ({a.get('error')})"
    # The restore's own wall time in its process; the engine's duration_ms leaves out the run record.
    return (
        f"{a['label']}: {a['duration_ms'] / 1000:.2f} s engine ({a['wall']:.2f} s around the call; "
        f"{a['updated']:,} rows put back)"
    )


def fmt_s(x) -> str:
    return "" if x is None else f"{x:.2f}"


def markdown(runs: list[DbRun], info: dict, rows: int, extra: dict) -> str:
    out = [
        f"### {rows:,} rows",
        "",
        f"{info['date']}, engine as of commit `{info.get('engine_commit', '?')}` (checkout `{info['commit']}`); load average {info['load_avg']} at start, "
        f"{info['load_avg_end']} at end. Report body {extra['body_mb']:.1f} MB; downloading it alone (Python, "
        f"loopback) {extra['fetch_s']:.2f} s = {extra['body_mb'] / extra['fetch_s']:.0f} MB/s.",
        "",
    ]
    heads = [DbLabels[r.database] for r in runs]
    out.append("| step | " + " | ".join(f"{h} s | {h} × (e) | {h} peak RSS MB" for h in heads) + " |")
    out.append("| --- | " + " | ".join("---: | ---: | ---:" for _ in heads) + " |")
    keys = [k for k in ("a", "b", "c", "d", "d2", "e", "e2") if any(k in r.steps for r in runs)]
    for key in keys:
        label = " / ".join(dict.fromkeys(r.steps[key].label for r in runs if key in r.steps))
        cells = []
        for r in runs:
            s, e = r.steps.get(key), r.steps.get("e")
            if s is None or e is None:
                cells.append(" | | ")
                continue
            ratio = s.per_row_vs(e)
            rows_note = "" if s.rows == rows else f" ({s.rows:,} rows)"
            cells.append(
                f"{s.seconds:.2f}{rows_note} | {ratio:.2f} | {'' if s.rss_mb is None else f'{s.rss_mb:.0f}'}"
            )
        out.append(f"| ({key}) {label} | " + " | ".join(cells) + " |")
    floors = "; ".join(
        f"{DbLabels[r.database]} {r.steps['e'].note}"
        for r in runs
        if r.steps.get("e", None) and r.steps["e"].note
    )
    out += [
        "",
        "× (e) is per row for (d), which runs on fewer rows." + (f" (e): {floors}." if floors else ""),
        "",
    ]
    out += ["| target | " + " | ".join(heads) + " |", "| --- | " + " | ".join("---" for _ in heads) + " |"]
    per = {r.database: {name: (ok, detail) for name, ok, detail in targets(r, rows)} for r in runs}
    names = []
    for r in runs:
        for name in per[r.database]:
            if name not in names:
                names.append(name)
    for name in names:
        cells = []
        for r in runs:
            ok, detail = per[r.database].get(name, (None, ""))
            verdict = "PASS" if ok else ("" if ok is None else "**MISS**")
            cells.append(f"{verdict} {detail}".strip())
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    # phases
    if any(r.steps.get(k) and r.steps[k].phases for r in runs for k in "abc"):
        cols = [(r, k) for r in runs for k in "abc" if k in r.steps]
        out += [
            "",
            "Where a sync's time goes (seconds, inclusive; `·` rows are part of the row above them):",
            "",
        ]
        out.append("| phase | " + " | ".join(f"{DbLabels[r.database]} ({k})" for r, k in cols) + " |")
        out.append("| --- | " + " | ".join("---:" for _ in cols) + " |")
        tables = [phase_seconds(r.steps[k].phases) if r.steps[k].phases else {} for r, k in cols]
        for label, _ in PHASE_ROWS:
            out.append(f"| {label} | " + " | ".join(fmt_s(t.get(label)) for t in tables) + " |")
        out.append(
            "| engine duration_ms | " + " | ".join(f"{r.steps[k].seconds:.2f}" for r, k in cols) + " |"
        )

        def megabytes(step: Step, key: str) -> str:
            value = step.phases.get(key)
            return "" if value is None else f"{value / 1e6:.0f}"

        out.append(
            "| peak RSS, MB (wait4 / VmHWM / of which Arrow's memory pool at its peak) | "
            + " | ".join(
                f"{r.steps[k].rss_mb:.0f} / {megabytes(r.steps[k], '_vmhwm_bytes')} / "
                f"{megabytes(r.steps[k], '_arrow_pool_peak_bytes')}"
                for r, k in cols
            )
            + " |"
        )
    for r in runs:
        if r.loop.get("syncs"):
            out += ["", loop_summary(r)]
    for r in runs:
        if r.sizes:
            out += ["", sizes_summary(r)]
    for r in runs:
        if r.restore.get("targets"):
            out += ["", restore_summary(r)]
    out += [
        "",
        "| correctness check | " + " | ".join(heads) + " |",
        "| --- | " + " | ".join("---" for _ in heads) + " |",
    ]
    names = []
    for r in runs:
        for name, _, _ in r.checks:
            if name not in names:
                names.append(name)
    for name in names:
        cells = []
        for r in runs:
            found = [(ok, d) for n, ok, d in r.checks if n == name]
            cells.append(f"{'OK' if found[0][0] else '**FAIL**'}: {found[0][1]}" if found else "")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    for r in runs:
        if r.error:
            out += ["", f"**{DbLabels[r.database]} stopped:** {r.error}"]
    return "\n".join(out) + "\n"


DbLabels = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


def loop_summary(r: DbRun) -> str:
    syncs = r.loop["syncs"]
    secs = [s["duration_ms"] / 1000 for s in syncs]
    shares = [x for x in (history_share(s) for s in syncs) if x is not None]
    hist = [phase_seconds(s["phases"])["· history write: INSERT INTO …_version"] for s in syncs]
    return (
        f"{DbLabels[r.database]} loop: {len(syncs)} more 1% syncs in one process (no start-up): duration_ms "
        f"median {statistics.median(secs):.2f} s (min {min(secs):.2f}, max {max(secs):.2f}); history write "
        f"median {statistics.median(hist):.3f} s = {statistics.median(shares):.1%} of the sync "
        f"(max {max(shares):.1%}); rebuilding the bodies in the worker took {r.loop['rebuild_s']:.1f} s "
        "(not timed)."
    )


def sizes_summary(r: DbRun) -> str:
    s = r.sizes
    mb = 1024 * 1024

    def part(when: str) -> str:
        live, hist = s[when]["live"], s[when]["history"]
        return (
            f"live {live['total'] / mb:.1f} MB (heap {live['heap'] / mb:.1f} + indexes {live['indexes'] / mb:.1f}), "
            f"history {hist['total'] / mb:.1f} MB (heap {hist['heap'] / mb:.1f} + indexes "
            f"{hist['indexes'] / mb:.1f}): {hist['total'] / live['total']:.2f}×"
        )

    return (
        f"{DbLabels[r.database]} row history after {s['changing_syncs']} changing 1% syncs plus the full sync: "
        f"{s['rows']['history']:,} versions for {s['rows']['live']:,} live rows. As left: {part('as_left')}. "
        f"Compacted (VACUUM FULL / VACUUM): {part('compacted')}."
    )


def restore_summary(r: DbRun) -> str:
    lines = []
    for x in r.restore.get("targets", []):
        parts = []
        for a in x["attempts"]:
            phases = a.get("phases") or {}
            top = sorted(((p, v[1]) for p, v in phases.items() if p.count("/") == 2 and p.startswith("restore/")),
                         key=lambda pv: -pv[1])[:5]  # fmt: skip
            where = ", ".join(f"{p.split('/')[-1]} {s:.2f} s" for p, s in top)
            rss = f", peak RSS {a['rss_mb']:.0f} MB" if a.get("rss_mb") else ""
            parts.append(attempt_text(a) + rss + (f"; inside apply_state: {where}" if where else ""))
        lines.append(
            f"{DbLabels[r.database]} restore {x['back']} changing syncs back (to seq {x['target']}; "
            f"{x['expected_updated']:,} rows differ): " + " — ".join(parts) + "."
        )
    return "\n\n".join(lines)


def from_json(data: dict) -> list[DbRun]:
    """The runs of a --json file, to render them again (--render)."""
    runs = []
    for name, r in data["databases"].items():
        steps = {
            k: Step(k, v["label"], v["rows"], v["seconds"], v.get("wall"), v.get("rss_mb"), v.get("cpu"),
                    v.get("note", ""), v.get("result", {}), v.get("phases", {}))
            for k, v in r["steps"].items()
        }  # fmt: skip
        checks = [(c["check"], c["ok"], c["detail"]) for c in r["checks"]]
        runs.append(DbRun(name, steps, checks, r.get("loop") or {}, r.get("sizes") or {}, r.get("restore") or {},
                          r.get("error")))  # fmt: skip
    return runs


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine_info() -> dict:
    info = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "uptime": uptime(),
        "sqlite": sqlite3.sqlite_version,
    }
    for key, cmd in (
        ("commit", ["git", "rev-parse", "--short", "HEAD"]),
        # The last commit that changed the engine (what the figures are about).
        ("engine_commit", ["git", "log", "-1", "--format=%h", "--", "finalesync", "retries", "health"]),
    ):
        try:
            info[key] = subprocess.run(
                cmd, cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            info[key] = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu_model"] = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "?"
            )
        with open("/proc/meminfo") as fh:
            info["mem_gib"] = round(int(fh.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        import pyarrow

        info["pyarrow"] = pyarrow.__version__
    except ImportError:
        pass
    return info


# --- main ---------------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="inventory rows (default 100,000)")
    parser.add_argument("--million", action="store_true", help="use 1,000,000 rows")
    parser.add_argument(
        "--databases", default="postgresql,sqlite", help="comma-separated: postgresql, sqlite (default both)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="a PostgreSQL URL whose server gets the throw-away database (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--history-syncs",
        type=int,
        help="1%% syncs before the history is measured, (c) included (default 100 up to 100,000 rows, else 10)",
    )
    parser.add_argument(
        "--restore-back",
        default="10",
        metavar="N[,N]",
        help="restore to the state this many changing syncs before the last (comma-separated; 0: no restore)",
    )
    parser.add_argument(
        "--restore-timeout", type=float, help="kill the restore after S seconds (default: --step-timeout)"
    )
    parser.add_argument(
        "--prototype",
        default="",
        metavar="NAMES",
        help="engine changes to try out in every child, comma-separated: analyze-diff (the report "
        "says so; see bench/bench_child.py)",
    )
    parser.add_argument(
        "--restore-prototype",
        default="",
        metavar="NAMES",
        help="restore a second time with these prototypes (after undoing the first restore if it finished)",
    )
    parser.add_argument("--naive-rows", type=int, default=5_000, help="rows for (d), default 5,000 (0: skip)")
    parser.add_argument(
        "--phases",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time the sync's phases and the apply's statements (default on)",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="run every child under cProfile, .prof files into DIR"
    )
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE")
    parser.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown to FILE")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark databases")
    parser.add_argument(
        "--render", metavar="JSON", help="print the Markdown of an earlier --json file and exit"
    )
    parser.add_argument(
        "--step-timeout", type=float, help="kill a step after S seconds (default 300 + 0.6 ms/row)"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.render:
        data = json.loads(Path(args.render).read_text())
        print(markdown(from_json(data), data["machine"], data["rows"], data["body"]), end="")
        return 0

    rows = 1_000_000 if args.million else args.rows
    if rows < 100:
        parser.error("--rows must be at least 100")
    wanted = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not wanted or any(d not in DATABASES for d in wanted):
        parser.error(f"--databases takes {', '.join(DATABASES)}")
    try:
        restore_back = sorted({int(b) for b in args.restore_back.split(",") if int(b) > 0}, reverse=True)
    except ValueError:
        parser.error("--restore-back takes whole numbers, comma-separated")
    history_syncs = args.history_syncs if args.history_syncs is not None else (100 if rows <= 100_000 else 10)
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)

    global SPAWN
    SPAWN = Spawner()  # first, while this process is small
    info = machine_info()
    workdir = Path(tempfile.mkdtemp(prefix="finalesync_bench_"))
    plan = Plan(
        rows=rows, seed=args.seed, history_syncs=max(1, history_syncs), restore_back=restore_back,
        naive_rows=max(0, args.naive_rows), phases=args.phases, profile_dir=profile_dir,
        step_timeout=args.step_timeout or 300 + rows * 0.0006, workdir=workdir,
        report=workdir / "report.csv", plain=workdir / "plain.csv", prototypes=args.prototype,
        restore_prototypes=args.restore_prototype,
        restore_timeout=args.restore_timeout or args.step_timeout or 300 + rows * 0.0006,
    )  # fmt: skip
    dbs = []
    for name in wanted:
        db = (Postgres if name == "postgresql" else Sqlite)(args.database_url, workdir)
        try:
            info[name] = db.version()
        except Exception as exc:  # noqa: BLE001
            print(f"cannot reach {db.label}: {exc}", file=sys.stderr)
            shutil.rmtree(workdir, ignore_errors=True)
            return 2
        dbs.append(db)
    log(f"{rows:,} rows; {', '.join(wanted)}; load average {info['load_avg']}; workdir {workdir}")

    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FINALE_", "DATABASE_URL", "BENCH_"))
    }
    # DEBUG off as in production (query logging would skew the figures), with the test suite's keys unless
    # the caller chose its own settings module.
    base_env.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    base_env.update(LOG_LEVEL="WARNING", PYTHONDONTWRITEBYTECODE="1", DEBUG="false")
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    server = None
    runs: list[DbRun] = []
    extra = {}
    try:
        log("generating the report body ...")
        start = time.perf_counter()
        bodies = InventoryBodies(rows, args.seed)
        extra["body_mb"] = bodies.write(plan.report) / 1e6
        bodies.write_plain(plan.plain)
        extra["generate_s"] = time.perf_counter() - start
        server = ReportServer(plan.report).start()
        extra["fetch_s"], fetched = server.fetch()
        log(f"body {extra['body_mb']:.1f} MB generated in {extra['generate_s']:.1f} s (untimed); "
            f"fetched in {extra['fetch_s']:.3f} s")  # fmt: skip
        for db in dbs:
            bench = Bench(plan, db, server, bodies, base_env)
            try:
                bench.run()
            except BenchError as exc:
                bench.out.error = str(exc)
                print(f"\nbenchmark error on {db.label}: {exc}", file=sys.stderr)
            finally:
                runs.append(bench.out)
                if args.keep_db:
                    log(f"kept {getattr(db, 'db_name', None) or db.url}")
                else:
                    try:
                        db.drop()
                    except Exception as exc:  # noqa: BLE001
                        print(f"could not drop the {db.label} database: {exc}", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
        SPAWN.stop()
        if args.keep_db:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    info["load_avg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["uptime_end"] = uptime()
    print(markdown(runs, info, rows, extra))
    if profile_dir:
        print(f"profiles (timings include cProfile overhead): {profile_dir}/<database>_<step>.prof")
    if args.markdown:
        Path(args.markdown).write_text(markdown(runs, info, rows, extra))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": rows,
                    "machine": info,
                    "body": extra,
                    "plan": {"history_syncs": plan.history_syncs, "restore_back": plan.restore_back,
                             "naive_rows": plan.naive_rows, "phases": plan.phases},
                    "databases": {
                        r.database: {
                            "steps": {k: s.as_json() for k, s in r.steps.items()},
                            "targets": [{"target": n, "pass": ok, "detail": d} for n, ok, d in targets(r, rows)],
                            "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in r.checks],
                            "loop": r.loop,
                            "sizes": r.sizes,
                            "restore": r.restore,
                            "error": r.error,
                        }
                        for r in runs
                    },
                },
                indent=1,
                default=str,
            )
        )  # fmt: skip
    ok = all(r.error is None and all(ok for _, ok, _ in r.checks) for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
