"""What the retry queue does when a run of the engine ends (connected in RetriesConfig.ready()).

A failed or rolled-back run is written to the failure log. A recoverable failure of a scheduled, manual or
command-line sync queues a retry (the processor handles its own runs); a success closes the type's open retry
as superseded and marks its failed ones as superseded; a failure that needs a person closes the open retry.
A failed automatic repair of damaged rows queues a critical "restore" retry.
"""

from __future__ import annotations

from django.utils import timezone

from finalesync import texts
from finalesync.models import SyncRun

from . import queue
from .models import FailureLog, RetryItem, RetryStatus

Outcome = SyncRun.Outcome
SYNC_TRIGGERS = {SyncRun.Trigger.SCHEDULE, SyncRun.Trigger.MANUAL, SyncRun.Trigger.CLI}


def on_run_finished(sender, result, **kwargs) -> dict:
    """Returns follow-ups for the run's caller: whether a retry was queued, when, and what that means."""
    if result.outcome in (Outcome.FAILED, Outcome.ROLLED_BACK):
        log_failure(result)
    followups: dict = {}
    if result.restore_failed:
        queue.enqueue_retry(
            data_type=result.data_type,
            operation=RetryItem.Operation.RESTORE,
            error="restoring the last good rows after refused data failed",
            error_code="restore_failed",
            priority=RetryItem.Priority.CRITICAL,
            context={"sync_run": result.run_id, "seq": result.details.get("restore_seq")},
        )
    if result.trigger not in SYNC_TRIGGERS or result.outcome == Outcome.SKIPPED:
        return followups
    now = timezone.now()
    if result.outcome == Outcome.SUCCESS:
        queue.close_open(
            result.data_type,
            status=RetryStatus.COMPLETED,
            resolution=f"superseded by a {result.trigger} sync",
        )
        RetryItem.objects.filter(
            data_type=result.data_type, status=RetryStatus.FAILED, superseded_at__isnull=True
        ).update(superseded_at=now)
    elif result.recoverable:
        item = queue.enqueue_retry(
            data_type=result.data_type,
            error=result.error or "",
            error_code=result.error_code or "",
            retry_after=result.retry_after_seconds,
            context={"sync_run": result.run_id, "trigger": result.trigger},
        )
        queue.hold(item)
        followups = {
            "retry_enqueued": True,
            "retry_id": item.pk,
            "retry_at": item.next_retry_at.isoformat(),
            "advice": f"Kept the previous data; retry #{item.pk} runs at {texts.clock(item.next_retry_at)}. "
            + (result.advice or ""),
        }
    else:
        queue.close_open(
            result.data_type,
            status=RetryStatus.FAILED,
            resolution=f"not recoverable ({result.error_code}): needs a person",
        )
    return followups


def log_failure(result) -> FailureLog:
    details = dict(result.details)
    return FailureLog.objects.create(
        data_type=result.data_type,
        error_message=result.error or "",
        error_code=result.error_code or "",
        error_details=details,
        recoverable=result.recoverable,
        record_count=result.item_count,
        duration_ms=result.duration_ms,
        trigger=result.trigger,
        backup_available=result.restore_point_available,
        recovery_attempted=result.recovery_attempted,
        recovery_succeeded=result.recovery_succeeded if result.recovery_attempted else None,
        rolled_back=result.outcome == Outcome.ROLLED_BACK,
        restored_seq=result.restored_seq,
        sync_run_id=result.run_id,
    )
