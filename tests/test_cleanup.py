"""Cleanup removes exactly what is older than its retention, and nothing else."""

from datetime import timedelta

import pytest
from django.utils import timezone

from finalesync.models import DataTypeConfig, SyncRun
from finalesync.sync import ensure_configs
from retries.cleanup import run_cleanup
from retries.models import Backup, FailureLog, RetryItem


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
    DataTypeConfig.objects.filter(data_type="inventory").update(backup_keep_count=1, backup_keep_days=7)
    b_old = Backup.objects.create(data_type="inventory", row_count=1, checksum="1", created_at=ago(20))
    b_newest = Backup.objects.create(data_type="inventory", row_count=1, checksum="2", created_at=ago(10))

    removed = run_cleanup(now=now)

    assert removed == {"retries": 2, "failed_retries": 1, "failure_logs": 1, "backups": 1, "sync_runs": 1}
    assert set(RetryItem.objects.values_list("pk", flat=True)) == {
        new_done.pk,
        old_pending.pk,
        recent_failed.pk,
    }
    assert not RetryItem.objects.filter(pk__in=[old_done.pk, old_cancelled.pk, old_failed.pk]).exists()
    assert list(FailureLog.objects.values_list("pk", flat=True)) == [log_new.pk]
    assert list(SyncRun.objects.values_list("pk", flat=True)) == [run_new.pk]
    assert list(Backup.objects.values_list("pk", flat=True)) == [b_newest.pk]
    assert (
        not SyncRun.objects.filter(pk=run_old.pk).exists() and not Backup.objects.filter(pk=b_old.pk).exists()
    )
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
