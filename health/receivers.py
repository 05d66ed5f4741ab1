"""What the health app does when the engine finishes a run or the retry queue gives up (connected in
HealthConfig.ready(); they run after the retry queue's own receiver, as INSTALLED_APPS lists retries first)."""

from __future__ import annotations

from django.utils import timezone

from finalesync.models import SyncRun

from . import alerts, recording

Outcome = SyncRun.Outcome
# Runs that talk to Finale: their outcome is the connection's health. A restore is a person's act.
SYNC_TRIGGERS = {SyncRun.Trigger.SCHEDULE, SyncRun.Trigger.MANUAL, SyncRun.Trigger.CLI, SyncRun.Trigger.RETRY}


def on_run_finished(sender, result, **kwargs) -> None:
    if result.trigger not in SYNC_TRIGGERS or result.outcome == Outcome.SKIPPED:
        return
    now = timezone.now()
    if result.outcome == Outcome.SUCCESS:
        recording.record_success(data_type=result.data_type, item_count=result.item_count, now=now)
    else:
        recording.record_failure(
            data_type=result.data_type,
            error_message=result.error or "",
            recoverable=bool(result.recoverable),
            now=now,
        )
    alerts.after_run(result)


def on_retry_exhausted(sender, item, **kwargs) -> None:
    alerts.retry_exhausted(item)
