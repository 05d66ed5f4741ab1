"""A sync process killed at the worst moment, and two syncs of one type at once, in real processes."""

import json
import signal
import subprocess
import sys
import time

import pytest

from finalesync.datatypes import registry
from finalesync.models import SyncRun
from finalesync.sync import sync_data_type

from .conftest import ROOT, finale_env, manage


def rows(data_type):
    return list(registry.get(data_type).model.objects.order_by("natural_key").values())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("data_type", ["inventory", "purchase_orders"])
def test_sync_killed_inside_apply_leaves_previous_rows(finale, data_type, tmp_path):
    assert sync_data_type(data_type=data_type, force=True).outcome == "success"
    before = rows(data_type)
    finale.mutate(data_type, ratio=0.5)
    marker = tmp_path / "applied"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "scripts" / "kill_during_apply.py"), str(marker), data_type],
        env=finale_env(finale),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the sync never reached its apply step"
            time.sleep(0.05)
        created, updated, deleted = map(int, marker.read_text().split())
        assert updated > 0  # it really had written changes inside its transaction
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    assert rows(data_type) == before
    # ...and neither is its row history half-written: the versions are those of the first sync only.
    assert registry.get(data_type).model.Versions.objects.count() == len(before)
    # The killed worker's lock is gone (advisory: closed session; lease: dead pid) and the next sync applies.
    after = sync_data_type(data_type=data_type)
    assert after.outcome == "success", after.skip_reason or after.error
    assert after.updated == updated


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runsync_processes_sync_once(finale):
    env = finale_env(finale)
    env["FINALE_READ_TIMEOUT"] = "20"
    finale.slow_seconds = 3.0
    finale.set_fault("inventory", "slow")  # the first fetch takes 3 s, holding the lock
    cmd = [sys.executable, str(ROOT / "manage.py"), "runsync", "inventory", "--force", "--json"]
    first = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(1.0)
    second = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out1, err1 = first.communicate(timeout=60)
    out2, err2 = second.communicate(timeout=60)
    results = [json.loads(out1), json.loads(out2)]
    assert sorted(r["outcome"] for r in results) == ["skipped", "success"], (err1, err2)
    assert first.returncode == 0 and second.returncode == 0
    assert finale.requests_served["inventory"] == 1
    assert SyncRun.objects.filter(data_type="inventory", outcome="success").count() == 1
    skipped = SyncRun.objects.get(data_type="inventory", outcome="skipped")
    assert "another worker" in skipped.skip_reason


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_runsync_json_prints_one_object_per_type_and_exit_code(finale):
    env = finale_env(finale)
    ok = manage("runsync", "--force", "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    objects = [json.loads(line) for line in ok.stdout.splitlines()]
    assert [o["data_type"] for o in objects] == registry.NAMES
    assert all(o["outcome"] == "success" for o in objects)
    assert set(objects[0]) == {
        "data_type", "outcome", "item_count", "created", "updated", "deleted", "unchanged",
        "error", "recoverable", "retry_enqueued", "duration_ms", "skip_reason", "advice",
    }  # fmt: skip
    finale.set_fault("vendors", "http_401")
    bad = manage("runsync", "vendors", "--force", "--json", env=env)
    assert bad.returncode == 1
    [obj] = [json.loads(line) for line in bad.stdout.splitlines()]
    assert (obj["outcome"], obj["recoverable"], obj["retry_enqueued"]) == ("failed", False, False)
    assert finale.api_secret not in bad.stdout + bad.stderr
    # Not forced and not due: every type is skipped, which is still success.
    again = manage("runsync", "--json", env=env)
    assert again.returncode == 0
    assert {json.loads(line)["outcome"] for line in again.stdout.splitlines()} == {"skipped"}
