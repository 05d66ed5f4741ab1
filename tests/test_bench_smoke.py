"""The sync benchmark (bench/sync_bench.py) runs end to end on a small report and its checks hold.

It is a report, not a timed test: nothing here asserts a speed, only that every step ran, every correctness
check held (exact counts, restored rows equal to the state synced then) and every figure was produced.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings

from .conftest import ROOT

pytestmark = pytest.mark.slow

ROWS = 2_000


def run_bench(tmp_path, *args: str) -> dict:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sync_bench.py"), "--rows", str(ROWS), "--history-syncs", "3",
         "--restore-back", "2", "--naive-rows", "50", "--json", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return json.loads(out.read_text())


def assert_complete(run: dict) -> None:
    assert run["error"] is None
    assert run["checks"] and all(c["ok"] for c in run["checks"]), [c for c in run["checks"] if not c["ok"]]
    steps = run["steps"]
    assert {"a", "b", "c", "d", "d2", "e"} <= set(steps)
    assert steps["a"]["result"]["created"] == ROWS
    assert steps["b"]["result"]["unchanged"] == ROWS
    # The phase timers saw the history write of (c) apart from the live writes.
    assert any(path.endswith("Staging.apply/SQL INSERT history") for path in steps["c"]["phases"])
    assert all(s["rss_mb"] and s["rss_mb"] > 0 for k, s in steps.items() if k in "abc")
    assert len(run["loop"]["syncs"]) == 2
    assert run["sizes"]["rows"]["live"] == ROWS and run["sizes"]["rows"]["history"] > ROWS
    assert [a["outcome"] for t in run["restore"]["targets"] for a in t["attempts"]] == ["success"]
    names = [t["target"] for t in run["targets"]]
    assert any(n.startswith("(c) 1% changed") for n in names)
    assert any(n.startswith("history write") for n in names)


def test_bench_runs_on_sqlite_and_its_checks_hold(tmp_path):
    report = run_bench(tmp_path, "--databases", "sqlite")
    assert report["rows"] == ROWS
    assert_complete(report["databases"]["sqlite"])
    assert "e2" in report["databases"]["sqlite"]["steps"]


@pytest.mark.postgres
def test_bench_runs_on_postgresql_and_its_checks_hold(tmp_path):
    db = settings.DATABASES["default"]
    admin = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"
    report = run_bench(tmp_path, "--databases", "postgresql", "--database-url", admin)
    assert_complete(report["databases"]["postgresql"])
