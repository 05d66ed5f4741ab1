"""A sync whose lock was taken over while it stalled never applies (SQLite leases; PostgreSQL's advisory locks
live as long as the session)."""

import json
import subprocess
import sys
import time

import pytest
from django.conf import settings

from finalesync.datatypes import registry
from finalesync.models import SyncRun
from finalesync.sync import sync_data_type

from .conftest import ROOT, finale_env


def rows(data_type):
    return list(registry.get(data_type).model.objects.order_by("natural_key").values())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), reason="leases are SQLite's lock"
)
def test_a_sync_whose_lease_expired_mid_sync_does_not_apply(finale, tmp_path):
    assert sync_data_type(data_type="vendors", force=True).outcome == "success"
    finale.mutate("vendors", ratio=0.3)  # what the stalled worker will have read
    marker = tmp_path / "compared"
    env = {**finale_env(finale), "SYNC_LOCK_TTL_SECONDS": "2", "FINALE_TOTAL_TIMEOUT": "1.5"}
    older = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "scripts" / "stall_before_apply.py"),
            str(marker),
            "vendors",
            "5",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert older.poll() is None, older.stderr.read().decode()
            assert time.monotonic() < deadline, "the stalling sync never compared its rows"
            time.sleep(0.05)
        time.sleep(2.5)  # its lease has expired; a newer worker takes the type over with newer data
        finale.mutate("vendors", ratio=0.3)
        newer = sync_data_type(data_type="vendors", force=True)
        assert newer.outcome == "success" and newer.updated > 0
        after_newer = rows("vendors")
        out, err = older.communicate(timeout=60)
    finally:
        if older.poll() is None:
            older.kill()
    result = json.loads(out.decode().splitlines()[-1])
    assert result["outcome"] == "skipped", err.decode()
    assert "another worker took it over" in result["skip_reason"]
    assert rows("vendors") == after_newer  # the older data never won
    assert SyncRun.objects.filter(data_type="vendors", outcome="success").count() == 2
