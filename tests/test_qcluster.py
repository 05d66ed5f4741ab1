"""A real django-q2 cluster, started by the test, fires the schedules and syncs (ORM broker and Redis broker)."""

import subprocess
import sys
import time
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from finalesync.models import SyncRun

from .conftest import ROOT, finale_env


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def run_cluster_until_synced(env, log_path, timeout=90):
    call_command("setupschedules", verbosity=0)
    Schedule.objects.update(next_run=timezone.now())  # due now, so the first scheduler pass fires them
    # django-q2's guard loop calls the scheduler every 30 s whatever its cycle: each test takes ~31 s.
    env = {**env, "Q_WORKERS": "2"}
    cluster = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),  # a file, not a pipe: an unread pipe would block the cluster
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = set(SyncRun.objects.filter(trigger="schedule").values_list("data_type", "outcome"))
            if {(t, "success") for t in ("inventory", "vendors", "boms", "purchase_orders")} <= done:
                return done
            assert cluster.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.5)
        raise AssertionError(f"the cluster did not sync every type in {timeout} s; runs: {done}")
    finally:
        cluster.terminate()
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.kill()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_qcluster_with_orm_broker_runs_the_scheduled_sync(finale, tmp_path):
    env = finale_env(finale)
    env.pop("REDIS_URL", None)
    env["Q_CLUSTER_NAME"] = f"test-orm-{uuid.uuid4().hex[:6]}"
    run_cluster_until_synced(env, tmp_path / "qcluster.log")
    assert Schedule.objects.get(name="auto-sync-finale").last_run() is not None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not redis_available(), reason="needs Redis on 127.0.0.1:6379")
def test_qcluster_with_redis_broker_runs_the_scheduled_sync(finale, tmp_path):
    env = finale_env(finale)
    env["REDIS_URL"] = "redis://127.0.0.1:6379/15"
    env["Q_CLUSTER_NAME"] = f"test-redis-{uuid.uuid4().hex[:6]}"
    run_cluster_until_synced(env, tmp_path / "qcluster.log")
