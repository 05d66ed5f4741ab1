"""Several retry processors in real processes: each item is worked exactly once; a killed one is reclaimed."""

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from finalesync.models import SyncRun
from finalesync.runs import RunResult
from retries.models import RetryItem
from retries.queue import process_retries

from .conftest import ROOT, database_url

WORKER = str(ROOT / "tests" / "scripts" / "retry_worker.py")


def env():
    import os

    return {**os.environ, "DATABASE_URL": database_url(), "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_processors_work_200_items_exactly_once():
    now = timezone.now() - timedelta(seconds=1)
    RetryItem.objects.bulk_create(
        RetryItem(data_type=f"t{i:03d}", priority=1 + i % 4, next_retry_at=now, created_at=now)
        for i in range(200)
    )
    workers = [subprocess.Popen([sys.executable, WORKER, "drain"], env=env(), cwd=ROOT) for _ in range(4)]
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    runs = Counter(SyncRun.objects.values_list("data_type", flat=True))
    assert len(runs) == 200 and set(runs.values()) == {1}
    assert RetryItem.objects.filter(status="completed").count() == 200
    # the work really was shared
    assert len(set(SyncRun.objects.values_list("triggered_by", flat=True))) > 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_killed_processor_item_is_reclaimed_after_its_lease_and_the_attempt_counts(tmp_path):
    item = RetryItem.objects.create(
        data_type="inventory", next_retry_at=timezone.now() - timedelta(seconds=1)
    )
    marker = tmp_path / "claimed"
    proc = subprocess.Popen([sys.executable, WORKER, "hang", str(marker), "2"], env=env(), cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    item.refresh_from_db()
    assert item.status == "processing"
    assert (
        process_retries(handler=lambda i: RunResult(data_type=i.data_type, outcome="success")).processed == []
    )
    time.sleep(2.2)
    report = process_retries(handler=lambda i: RunResult(data_type=i.data_type, outcome="success"))
    assert report.reclaimed == 1 and [p["status"] for p in report.processed] == ["completed"]
    item.refresh_from_db()
    assert (item.status, item.retry_count) == ("completed", 1)
