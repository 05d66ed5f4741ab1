"""Removing what is old: finished retries, failure logs, sync runs and backups beyond their retention."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from finalesync.models import DataTypeConfig, SyncRun

from .backups import prune_backups
from .models import FailureLog, RetryItem, RetryStatus


def run_cleanup(*, now=None) -> dict:
    """Delete finished retries, failure logs, sync runs and backups older than their retention settings.
    Returns how many of each were removed."""
    now = now or timezone.now()
    removed = {}
    removed["retries"] = RetryItem.objects.filter(
        status__in=[RetryStatus.COMPLETED, RetryStatus.CANCELLED],
        updated_at__lt=now - timedelta(days=settings.CLEANUP_RETRY_DAYS),
    ).delete()[0]
    removed["failed_retries"] = RetryItem.objects.filter(
        status=RetryStatus.FAILED, updated_at__lt=now - timedelta(days=settings.CLEANUP_FAILED_RETRY_DAYS)
    ).delete()[0]
    removed["failure_logs"] = FailureLog.objects.filter(
        created_at__lt=now - timedelta(days=settings.CLEANUP_FAILURE_LOG_DAYS)
    ).delete()[0]
    removed["backups"] = sum(
        prune_backups(
            data_type=c.data_type, keep_count=c.backup_keep_count, keep_days=c.backup_keep_days, now=now
        )
        for c in DataTypeConfig.objects.all()
    )
    removed["sync_runs"] = SyncRun.objects.filter(
        started_at__lt=now - timedelta(days=settings.CLEANUP_SYNC_RUN_DAYS)
    ).delete()[0]
    return removed
