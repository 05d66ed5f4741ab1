"""Removing what is old: finished retries, failure logs, sync runs, and row history beyond its retention."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from finalesync import history
from finalesync.models import DataTypeConfig, SyncRun

from .models import FailureLog, RetryItem, RetryStatus


def run_cleanup(*, now=None) -> dict:
    """Delete finished retries, failure logs and sync runs older than their retention settings, and prune each
    type's row history to its retention (never what a queued or running restore needs, never the latest
    state). Returns how many of each were removed."""
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
    protected = history.restorable_seqs()
    removed["history_versions"] = sum(
        history.prune(c.data_type, now=now, protect=protected.get(c.data_type, set()))
        for c in DataTypeConfig.objects.all()
    )
    # A run whose state is still restorable keeps its row: it is the restore point's name and time.
    floors = {c.data_type: c.history_floor for c in DataTypeConfig.objects.all()}
    keep = Q()
    for data_type, floor in floors.items():
        keep |= Q(data_type=data_type, history_seq__gte=max(floor, 1))
    old = SyncRun.objects.filter(started_at__lt=now - timedelta(days=settings.CLEANUP_SYNC_RUN_DAYS))
    removed["sync_runs"] = old.exclude(keep).delete()[0] if floors else old.delete()[0]
    return removed
