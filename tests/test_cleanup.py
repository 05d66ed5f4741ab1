"""Cleanup removes exactly what is older than its retention, and nothing else."""

from datetime import timedelta

import pytest
from django.utils import timezone

from finalesync.datatypes import registry
from finalesync.models import DataTypeConfig, SyncRun
from finalesync.sync import ensure_configs
from retries.cleanup import run_cleanup
from retries.models import FailureLog, RetryItem


@pytest.mark.django_db
def test_cleanup_removes_only_what_is_past_retention():
    now = timezone.now()
    ago = lambda days: now - timedelta(days=days)  # noqa: E731
    old_done = RetryItem.objects.create(
        data_type="a", status="completed", next_retry_at=now, updated_at=ago(8)
    )
    old_cancelled = RetryItem.objects.create(
        data_type="b", status="cancelled", next_retry_at=now, updated_at=ago(8)
    )
    new_done = RetryItem.objects.create(
        data_type="c", status="completed", next_retry_at=now, updated_at=ago(6)
    )
    old_pending = RetryItem.objects.create(
        data_type="d", status="pending", next_retry_at=now, updated_at=ago(60)
    )
    old_failed = RetryItem.objects.create(
        data_type="e", status="failed", next_retry_at=now, updated_at=ago(31)
    )
    recent_failed = RetryItem.objects.create(
        data_type="f", status="failed", next_retry_at=now, updated_at=ago(20)
    )
    log_old = FailureLog.objects.create(data_type="a", error_message="x", trigger="cli", created_at=ago(91))
    log_new = FailureLog.objects.create(data_type="a", error_message="x", trigger="cli", created_at=ago(89))
    run_old = SyncRun.objects.create(data_type="a", trigger="cli", started_at=ago(91))
    run_new = SyncRun.objects.create(data_type="a", trigger="cli", started_at=ago(1))
    ensure_configs()
    # Row history: key A changed by an old sync (seq 1) and a newer one (seq 2); keep one sync, 7 days.
    DataTypeConfig.objects.filter(data_type="inventory").update(
        history_keep_syncs=1, history_keep_days=7, history_seq=2
    )
    point_old = SyncRun.objects.create(
        data_type="inventory", trigger="cli", started_at=ago(95), outcome="success", created=1, history_seq=1
    )
    point_new = SyncRun.objects.create(
        data_type="inventory", trigger="cli", started_at=ago(10), outcome="success", updated=1, history_seq=2
    )
    versions = registry.get("inventory").model.Versions.objects
    versions.create(natural_key="A", seq=1, sku="A", on_hand=1)
    versions.create(natural_key="A", seq=2, sku="A", on_hand=2)

    removed = run_cleanup(now=now)

    assert removed == {
        "retries": 2,
        "failed_retries": 1,
        "failure_logs": 1,
        "history_versions": 1,
        "sync_runs": 2,
    }
    assert set(RetryItem.objects.values_list("pk", flat=True)) == {
        new_done.pk,
        old_pending.pk,
        recent_failed.pk,
    }
    assert not RetryItem.objects.filter(pk__in=[old_done.pk, old_cancelled.pk, old_failed.pk]).exists()
    assert list(FailureLog.objects.values_list("pk", flat=True)) == [log_new.pk]
    # An old run goes; the run that named a still-restorable point stays with it.
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {run_new.pk, point_new.pk}
    assert list(versions.values_list("seq", flat=True)) == [2]
    assert not SyncRun.objects.filter(pk__in=[run_old.pk, point_old.pk]).exists()
    assert DataTypeConfig.objects.get(data_type="inventory").history_floor == 2
    assert not FailureLog.objects.filter(pk=log_old.pk).exists()


@pytest.mark.django_db
def test_cleanup_command_reports_what_it_removed(capsys):
    from django.core.management import call_command

    RetryItem.objects.create(
        data_type="a",
        status="completed",
        next_retry_at=timezone.now(),
        updated_at=timezone.now() - timedelta(days=30),
    )
    call_command("cleanup", "--json")
    assert '"retries": 1' in capsys.readouterr().out
