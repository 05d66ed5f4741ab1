"""The system health (get_sync_system_health), `synchealth` and `GET /health/`."""

import json
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import close_old_connections
from django.utils import timezone
from django_q.models import Schedule

from finalesync.models import DataTypeConfig
from finalesync.sync import ensure_configs, sync_data_type
from health import recording
from health.models import ConnectionHealth
from health.system import HEALTH_COLUMNS, get_sync_system_health
from retries.models import FailureLog, RetryItem
from retries.queue import enqueue_retry

from .opsdata import health_rows, make_user

pytestmark = pytest.mark.django_db


def set_health(data_type, status, *, success_age=timedelta(minutes=1), failures=0, error=None):
    now = timezone.now()
    ConnectionHealth.objects.update_or_create(
        data_type=data_type,
        defaults=dict(
            status=status,
            consecutive_failures=failures,
            last_check_time=now,
            last_success_time=now - success_age if success_age is not None else None,
            last_failure_time=now if failures else None,
            error_message=error,
            item_count=42,
        ),
    )


def all_healthy():
    ensure_configs()
    for name in ("inventory", "vendors", "boms", "purchase_orders"):
        set_health(name, "healthy")


def test_all_healthy_is_healthy_and_exit_0():
    all_healthy()
    health = get_sync_system_health()
    assert (health.status, health.exit_code, health.http_status) == ("healthy", 0, 200)
    assert {t.grade for t in health.data_types} == {"excellent"}


def test_a_degraded_type_makes_the_system_degraded():
    all_healthy()
    set_health("vendors", "degraded", failures=1, error="HTTP 503")
    health = get_sync_system_health()
    assert (health.status, health.exit_code, health.http_status) == ("degraded", 1, 200)


def test_a_stale_type_degrades_and_a_very_stale_one_is_unhealthy_without_any_failure():
    all_healthy()
    set_health("vendors", "healthy", success_age=timedelta(minutes=150))  # hourly: stale, < 4 intervals
    health = get_sync_system_health()
    assert health.status == "degraded"
    assert health.by_type()["vendors"].stale and health.by_type()["vendors"].grade == "good"
    set_health("inventory", "healthy", success_age=timedelta(minutes=25))  # every 5 min: > 4 intervals
    health = get_sync_system_health()
    assert (health.status, health.exit_code, health.http_status) == ("unhealthy", 2, 503)
    assert health.by_type()["inventory"].effective_status == "unhealthy"
    assert health.by_type()["inventory"].status == "healthy"  # the stored column is left as it is


def test_paused_snoozed_and_disabled_types_do_not_count():
    all_healthy()
    set_health("boms", "unhealthy", failures=1, error="HTTP 401")
    assert get_sync_system_health().http_status == 503
    DataTypeConfig.objects.filter(data_type="boms").update(paused=True)
    health = get_sync_system_health()
    assert (health.status, health.http_status) == ("healthy", 200)
    assert health.by_type()["boms"].state == "paused" and health.by_type()["boms"].grade == "poor"
    DataTypeConfig.objects.filter(data_type="boms").update(
        paused=False, snoozed_until=timezone.now() + timedelta(hours=1)
    )
    assert get_sync_system_health().by_type()["boms"].state == "snoozed"
    assert get_sync_system_health().status == "healthy"
    DataTypeConfig.objects.filter(data_type="boms").update(snoozed_until=None, enabled=False)
    assert get_sync_system_health().status == "healthy"


def test_never_checked_types_are_unknown_and_degrade_the_system():
    health = get_sync_system_health()
    assert [t.grade for t in health.data_types] == ["unknown"] * 4
    assert health.status == "degraded"
    assert health.by_type()["inventory"].last_check_time is None


def test_queue_counts_failures_24h_and_oldest_pending_retry():
    now = timezone.now()
    enqueue_retry(data_type="vendors", error="x", now=now - timedelta(minutes=30))
    item = enqueue_retry(data_type="boms", error="y", now=now - timedelta(minutes=5))
    RetryItem.objects.filter(pk=item.pk).update(status="processing")
    RetryItem.objects.create(data_type="boms", status="failed", next_retry_at=now)
    FailureLog.objects.create(data_type="vendors", error_message="a", trigger="schedule")
    FailureLog.objects.create(
        data_type="vendors", error_message="b", trigger="schedule", created_at=now - timedelta(hours=25)
    )
    health = get_sync_system_health(now=now)
    assert health.retry_queue == {"pending": 1, "processing": 1, "failed": 1}
    assert health.failures_24h == 1
    assert health.oldest_pending_retry_age_seconds == pytest.approx(1800, abs=1)


def test_next_run_is_the_first_cycle_tick_after_the_type_is_due():
    now = timezone.now().replace(microsecond=0)
    ensure_configs()
    Schedule.objects.create(
        name="auto-sync-finale",
        func="finalesync.tasks.sync_cycle",
        schedule_type=Schedule.MINUTES,
        minutes=5,
        next_run=now + timedelta(minutes=2),
    )
    DataTypeConfig.objects.filter(data_type="vendors").update(last_run_at=now - timedelta(minutes=50))
    DataTypeConfig.objects.filter(data_type="inventory").update(last_run_at=now - timedelta(minutes=1))
    health = get_sync_system_health(now=now)
    # vendors (hourly) is due in 10 min: ticks at +2, +7, +12 → +12
    assert health.by_type()["vendors"].next_run_at == now + timedelta(minutes=12)
    assert health.by_type()["inventory"].next_run_at == now + timedelta(minutes=7)
    assert health.next_cycle_at == now + timedelta(minutes=2)
    DataTypeConfig.objects.filter(data_type="vendors").update(needs_attention=True)
    assert get_sync_system_health(now=now).by_type()["vendors"].next_run_at is None


def test_synchealth_json_has_the_documented_shape_and_exit_code(capsys):
    all_healthy()
    set_health("vendors", "degraded", failures=1, error="HTTP 503 from Finale")
    with pytest.raises(SystemExit) as exited:
        call_command("synchealth", "--json")
    assert exited.value.code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "degraded"
    assert set(data["retry_queue"]) == {"pending", "processing", "failed"}
    assert data["failures_24h"] == 0
    row = next(r for r in data["data_types"] if r["data_type"] == "vendors")
    assert set(HEALTH_COLUMNS) | {"grade", "stale"} <= set(row)
    assert (row["grade"], row["stale"], row["error_message"]) == ("fair", False, "HTTP 503 from Finale")


@pytest.mark.parametrize("status, code", [("healthy", 0), ("degraded", 1), ("unhealthy", 2)])
def test_synchealth_exit_codes(status, code, capsys):
    all_healthy()
    if status != "healthy":
        set_health("boms", status, failures=1, error="boom")
    if code:
        with pytest.raises(SystemExit) as exited:
            call_command("synchealth")
        assert exited.value.code == code
    else:
        call_command("synchealth")
    out = capsys.readouterr().out
    assert f"system {status}" in out and "Retry queue:" in out


def test_health_endpoint_is_503_when_an_active_type_is_unhealthy(client):
    all_healthy()
    assert client.get("/health/").status_code == 200
    set_health("inventory", "unhealthy", failures=1, error="HTTP 401 secret-ish text")
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"


def test_anonymous_health_shows_statuses_only_and_staff_see_everything(client):
    health_rows()
    anonymous = client.get("/health/").json()
    row = next(r for r in anonymous["data_types"] if r["data_type"] == "boms")
    assert row["status"] == "unhealthy" and row["grade"] == "poor"
    assert "error_message" not in row and "item_count" not in row
    assert "HTTP 401" not in json.dumps(anonymous)

    client.force_login(make_user("staffer"))
    staff = client.get("/health/").json()
    row = next(r for r in staff["data_types"] if r["data_type"] == "boms")
    assert row["error_message"] == "HTTP 401: bad key"
    assert set(HEALTH_COLUMNS) | {"grade", "stale"} <= set(row)
    assert set(staff) >= {"status", "data_types", "retry_queue", "failures_24h"}


def test_health_reflects_a_real_sync_through_the_simulator(finale, client):
    for name in ("inventory", "vendors", "boms", "purchase_orders"):
        assert sync_data_type(data_type=name, force=True).outcome == "success"
    data = client.get("/health/").json()
    assert data["status"] == "healthy"
    assert {r["grade"] for r in data["data_types"]} == {"excellent"}
    finale.set_fault("vendors", "http_503")
    sync_data_type(data_type="vendors")
    data = client.get("/health/").json()
    assert data["status"] == "degraded" and data["retry_queue"]["pending"] == 1 and data["failures_24h"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_are_all_counted():
    """Health updates are single UPDATEs with F() expressions: no lost failure counts under concurrency."""
    recording.ensure_row("vendors")
    workers, each = 4, 5
    errors = []

    def fail_many():
        try:
            for _ in range(each):
                recording.record_failure(
                    data_type="vendors", error_message="x", recoverable=True, now=timezone.now()
                )
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=fail_many) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    row = ConnectionHealth.objects.get(pk="vendors")
    assert row.consecutive_failures == workers * each
    assert row.status == "unhealthy"
