"""The retry queue: backoff, one open retry per type, supersede, the processor end to end, manual operations."""

import random
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from finalesync.datatypes import registry
from finalesync.sync import sync_data_type
from health.models import ConnectionHealth
from retries import queue
from retries.models import RetryItem, RetryStatus

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "retry_count, minutes", [(0, 5), (1, 10), (2, 20), (3, 40), (4, 80), (5, 120), (9, 120)]
)
def test_backoff_doubles_from_five_minutes_and_is_capped(retry_count, minutes):
    at = queue.next_retry_at(retry_count=retry_count, now=NOW, jitter=0)
    assert at - NOW == timedelta(minutes=minutes)


def test_backoff_jitter_stays_within_ten_percent():
    rng = random.Random(3)
    delays = [
        (queue.next_retry_at(retry_count=1, now=NOW, rng=rng) - NOW).total_seconds() for _ in range(2000)
    ]
    assert min(delays) >= 540 and max(delays) <= 660
    assert max(delays) - min(delays) > 60  # it really spreads


def test_backoff_never_earlier_than_retry_after():
    at = queue.next_retry_at(retry_count=0, now=NOW, retry_after=3600, jitter=0.1)
    assert at - NOW == timedelta(hours=1)
    assert queue.next_retry_at(retry_count=2, now=NOW, retry_after=5, jitter=0) - NOW == timedelta(minutes=20)


@pytest.mark.django_db
def test_one_open_retry_per_type_and_operation_is_a_database_rule():
    queue.enqueue_retry(data_type="inventory", error="boom", now=NOW)
    with pytest.raises(IntegrityError), transaction.atomic():
        RetryItem.objects.create(data_type="inventory", operation="sync", next_retry_at=NOW)
    # another operation, or a closed item, is fine
    RetryItem.objects.create(data_type="inventory", operation="restore", next_retry_at=NOW)
    RetryItem.objects.create(data_type="inventory", operation="sync", status="completed", next_retry_at=NOW)


@pytest.mark.django_db
def test_new_failure_updates_the_open_retry_instead_of_adding_one():
    first = queue.enqueue_retry(data_type="vendors", error="first", error_code="network", now=NOW)
    later = NOW + timedelta(minutes=1)
    second = queue.enqueue_retry(data_type="vendors", error="second", error_code="timeout", now=later)
    assert first.pk == second.pk
    assert RetryItem.objects.count() == 1
    assert (second.last_error_message, second.error_code, second.next_retry_at) == (
        "second",
        "timeout",
        first.next_retry_at,
    )
    pushed = queue.enqueue_retry(data_type="vendors", error="429", retry_after=7200, now=later)
    assert pushed.next_retry_at == later + timedelta(hours=2)


@pytest.mark.django_db
def test_network_fault_queues_retry_that_heals_after_five_minutes(finale):
    assert sync_data_type(data_type="inventory", force=True).outcome == "success"
    expected_count = registry.get("inventory").model.objects.count()
    finale.set_fault("inventory", "reset")
    failed = sync_data_type(data_type="inventory", trigger="schedule")
    assert (failed.outcome, failed.recoverable, failed.retry_enqueued) == ("failed", True, True)
    item = RetryItem.objects.get()
    assert item.status == "pending" and item.retry_count == 0
    delay = (item.next_retry_at - timezone.now()).total_seconds()
    assert 4.4 * 60 <= delay <= 5.5 * 60
    assert ConnectionHealth.objects.get(pk="inventory").status == "degraded"

    assert queue.process_retries().processed == []  # not due yet
    finale.clear_faults()
    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=True):
        report = queue.process_retries()
    assert [(p["data_type"], p["status"]) for p in report.processed] == [("inventory", "completed")]
    item.refresh_from_db()
    assert item.status == "completed" and item.completed_at is not None
    health = ConnectionHealth.objects.get(pk="inventory")
    assert (health.status, health.consecutive_failures, health.item_count) == ("healthy", 0, expected_count)


@pytest.mark.django_db
def test_auth_failure_is_not_retried_and_marks_unhealthy(finale):
    finale.set_fault("purchase_orders", "http_401")
    result = sync_data_type(data_type="purchase_orders", trigger="schedule")
    assert (result.recoverable, result.retry_enqueued) == (False, False)
    assert not RetryItem.objects.exists()
    assert ConnectionHealth.objects.get(pk="purchase_orders").status == "unhealthy"


@pytest.mark.django_db
def test_retries_exhaust_after_max_retries_with_growing_backoff(finale, settings):
    settings.RETRY_JITTER = 0
    finale.set_fault("vendors", "http_503")
    sync_data_type(data_type="vendors", trigger="schedule")
    item = RetryItem.objects.get()
    gaps = []
    clock = timezone.now()
    for _ in range(3):
        clock = item.next_retry_at + timedelta(seconds=1)
        with time_machine.travel(clock, tick=False):
            queue.process_retries()
        item.refresh_from_db()
        if item.status == "pending":
            gaps.append(round((item.next_retry_at - clock).total_seconds() / 60))
    assert gaps == [10, 20]
    assert (item.status, item.retry_count) == ("failed", 3)
    assert "gave up after 3" in item.resolution
    assert ConnectionHealth.objects.get(pk="vendors").status == "unhealthy"


@pytest.mark.django_db
def test_non_recoverable_failure_during_a_retry_fails_it_at_once(finale):
    finale.set_fault("boms", "http_500")
    sync_data_type(data_type="boms", trigger="schedule")
    finale.set_fault("boms", "html")
    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=True):
        queue.process_retries()
    item = RetryItem.objects.get()
    assert (item.status, item.retry_count, item.error_code) == ("failed", 1, "html_response")


@pytest.mark.django_db
def test_successful_scheduled_sync_completes_the_open_retry_as_superseded(finale):
    finale.set_fault("inventory", "http_502")
    sync_data_type(data_type="inventory", trigger="schedule")
    finale.clear_faults()
    assert sync_data_type(data_type="inventory", trigger="schedule", force=True).outcome == "success"
    item = RetryItem.objects.get()
    assert item.status == "completed" and "superseded" in item.resolution


@pytest.mark.django_db
def test_processor_takes_at_most_the_batch_by_priority_then_age():
    for i in range(12):
        RetryItem.objects.create(
            data_type=f"t{i:02d}",
            priority=1 + i % 4,
            next_retry_at=NOW,
            created_at=NOW + timedelta(seconds=i),
        )
    seen = []

    def handler(item):
        seen.append((item.priority, item.data_type))
        from finalesync.runs import RunResult

        return RunResult(data_type=item.data_type, outcome="success")

    report = queue.process_retries(now=NOW, handler=handler)
    assert len(report.processed) == 10
    assert seen == sorted(seen, key=lambda p: (-p[0], p[1]))
    assert RetryItem.objects.filter(status="pending").count() == 2


@pytest.mark.django_db
def test_expired_lease_goes_back_to_pending_and_the_attempt_counts():
    item = RetryItem.objects.create(data_type="inventory", next_retry_at=NOW)
    claimed, token = queue.claim_next(worker="dead-worker", now=NOW, lease_seconds=60)
    assert claimed.pk == item.pk
    assert queue.reclaim_expired(now=NOW + timedelta(seconds=30)) == 0
    assert queue.reclaim_expired(now=NOW + timedelta(seconds=61)) == 1
    item.refresh_from_db()
    assert (item.status, item.retry_count, item.error_code) == ("pending", 1, "lease_expired")
    # the dead worker's late completion cannot overwrite anything
    from finalesync.runs import RunResult

    assert queue.complete(claimed, token, RunResult(data_type="inventory", outcome="success")) is None
    item.refresh_from_db()
    assert item.status == "pending"


@pytest.mark.django_db
def test_item_that_always_kills_its_worker_ends_failed():
    item = RetryItem.objects.create(data_type="inventory", next_retry_at=NOW, max_retries=3)
    clock = NOW
    for _ in range(3):
        assert queue.claim_next(worker="w", now=clock, lease_seconds=60) is not None
        clock += timedelta(seconds=61)
        queue.reclaim_expired(now=clock)
    item.refresh_from_db()
    assert (item.status, item.retry_count) == ("failed", 3)


@pytest.mark.django_db
def test_manual_retry_now_cancel_and_requeue():
    item = queue.enqueue_retry(data_type="inventory", error="x", now=NOW)
    assert queue.retry_now(item_id=item.pk, user="ops", now=NOW).next_retry_at == NOW
    cancelled = queue.cancel(item_id=item.pk, user="ops", now=NOW)
    assert cancelled.status == "cancelled" and "ops" in cancelled.resolution
    with pytest.raises(ValueError, match="not pending"):
        queue.retry_now(item_id=item.pk, user="ops")
    RetryItem.objects.filter(pk=item.pk).update(retry_count=3)
    again = queue.requeue(item_id=item.pk, user="ops", now=NOW)
    assert (again.status, again.retry_count, again.next_retry_at) == ("pending", 0, NOW)
    with pytest.raises(ValueError, match="still pending"):
        queue.requeue(item_id=item.pk, user="ops")


@pytest.mark.django_db
def test_requeue_refuses_when_another_retry_is_open():
    old = RetryItem.objects.create(data_type="boms", status=RetryStatus.FAILED, next_retry_at=NOW)
    queue.enqueue_retry(data_type="boms", error="new", now=NOW)
    with pytest.raises(ValueError, match="already open"):
        queue.requeue(item_id=old.pk, user="ops")
