"""The retry queue: enqueueing recoverable failures, backoff, and the processor that works the queue.

Workers are made safe by the database, not by luck: claiming takes `SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL plus a conditional UPDATE whose row count says who won; completing checks the lease token.

An open sync retry owns the next attempt of its type: while it is open the schedule leaves the type alone
(`hold()` sets the type's hold until the retry is due), so one outage is retried by one owner and counted once.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from finalesync.locks import worker_id
from finalesync.models import DataTypeConfig, SyncRun

from . import signals
from .models import OPEN_STATUSES, RetryItem, RetryStatus

log = logging.getLogger("finalesync.retries")

# Types whose staleness hurts purchasing first get worked first.
DEFAULT_PRIORITY = {"inventory": RetryItem.Priority.HIGH, "purchase_orders": RetryItem.Priority.HIGH}


def next_retry_at(
    *,
    retry_count: int,
    now: datetime,
    base_seconds: float | None = None,
    cap_seconds: float | None = None,
    jitter: float | None = None,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """When attempt `retry_count + 1` is due: base × 2^retry_count (5, 10, 20, 40 min by default), capped,
    with ±jitter, and never earlier than a Retry-After the server gave."""
    base = settings.RETRY_BASE_SECONDS if base_seconds is None else base_seconds
    cap = settings.RETRY_MAX_DELAY_SECONDS if cap_seconds is None else cap_seconds
    spread = settings.RETRY_JITTER if jitter is None else jitter
    delay = min(base * (2**retry_count), cap)
    delay *= 1 + (rng or random).uniform(-spread, spread)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return now + timedelta(seconds=delay)


def open_item(data_type: str, operation: str = RetryItem.Operation.SYNC) -> RetryItem | None:
    return RetryItem.objects.filter(
        data_type=data_type, operation=operation, status__in=OPEN_STATUSES
    ).first()


def enqueue_retry(
    *,
    data_type: str,
    error: str,
    error_code: str = "",
    operation: str = RetryItem.Operation.SYNC,
    retry_after: float | None = None,
    priority: int | None = None,
    created_by: str = "system",
    context: dict | None = None,
    now: datetime | None = None,
) -> RetryItem:
    """Queue a retry of `operation` for `data_type`, or update the open one (one per type and operation).

    An update keeps the schedule, except that a Retry-After can only push it later."""
    now = now or timezone.now()
    for _ in range(3):
        item = open_item(data_type, operation)
        if item is not None:
            updates = {
                "last_error_message": error[:2000],
                "last_error_at": now,
                "error_code": error_code,
                "updated_at": now,
            }
            if retry_after is not None:
                updates["next_retry_at"] = max(item.next_retry_at, now + timedelta(seconds=retry_after))
            RetryItem.objects.filter(pk=item.pk).update(**updates)
            item.refresh_from_db()
            return item
        try:
            with transaction.atomic():
                return RetryItem.objects.create(
                    data_type=data_type,
                    operation=operation,
                    priority=priority or DEFAULT_PRIORITY.get(data_type, RetryItem.Priority.NORMAL),
                    max_retries=settings.RETRY_MAX_RETRIES,
                    next_retry_at=next_retry_at(retry_count=0, now=now, retry_after=retry_after),
                    last_error_message=error[:2000],
                    last_error_at=now,
                    error_code=error_code,
                    context=context or {},
                    created_by=created_by,
                    created_at=now,
                    updated_at=now,
                )
        except IntegrityError:
            continue  # another worker opened one between our look and our insert: update that one
    raise RuntimeError(f"could not enqueue a retry for {data_type}")


def hold(item: RetryItem) -> None:
    """While a sync retry is open the schedule leaves its type alone until the retry is due."""
    if item.operation == RetryItem.Operation.SYNC:
        DataTypeConfig.objects.filter(data_type=item.data_type).update(
            held_until=item.next_retry_at, hold_reason=f"retry #{item.pk} owns the next attempt"
        )


def release(data_type: str) -> None:
    """The type's sync retry is closed: the schedule may sync it again (a Finale Retry-After hold ends too,
    as the retry waited for it)."""
    DataTypeConfig.objects.filter(data_type=data_type, hold_reason__startswith="retry #").update(
        held_until=None, hold_reason=""
    )


def close_open(
    data_type: str, *, status: str, resolution: str, operation: str = RetryItem.Operation.SYNC, now=None
) -> int:
    now = now or timezone.now()
    if operation == RetryItem.Operation.SYNC:
        release(data_type)
    return RetryItem.objects.filter(
        data_type=data_type, operation=operation, status__in=OPEN_STATUSES
    ).update(
        status=status,
        resolution=resolution[:200],
        completed_at=now,
        updated_at=now,
        lease_token="",
        lease_owner="",
    )


# --- the processor -------------------------------------------------------------------------------------------
@dataclass
class ProcessReport:
    reclaimed: int = 0
    processed: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"reclaimed": self.reclaimed, "processed": self.processed, "count": len(self.processed)}


def reclaim_expired(*, now: datetime) -> int:
    """Items whose worker died (lease expired while processing) go back to pending; the attempt counts, so
    an item that always kills its worker ends as failed instead of looping."""
    expired = RetryItem.objects.filter(status=RetryStatus.PROCESSING, lease_expires_at__lt=now)
    dying = list(expired.filter(retry_count__gte=F("max_retries") - 1).values_list("pk", flat=True))
    exhausted = expired.filter(pk__in=dying).update(
        status=RetryStatus.FAILED,
        retry_count=F("retry_count") + 1,
        resolution="worker died while processing; no retries left",
        completed_at=now,
        updated_at=now,
        lease_token="",
        lease_owner="",
    )
    requeued = expired.update(
        status=RetryStatus.PENDING,
        retry_count=F("retry_count") + 1,
        last_error_message="the worker processing this retry stopped before finishing (lease expired)",
        last_error_at=now,
        error_code="lease_expired",
        next_retry_at=now,
        updated_at=now,
        lease_token="",
        lease_owner="",
    )
    for item in RetryItem.objects.filter(pk__in=dying, status=RetryStatus.FAILED):
        _exhausted(item)
    return exhausted + requeued


def claim_next(
    *, worker: str, now: datetime, lease_seconds: float | None = None
) -> tuple[RetryItem, str] | None:
    """Claim the most urgent due item (priority, then age). Returns (item, lease token) or None."""
    lease = timedelta(seconds=settings.RETRY_LEASE_SECONDS if lease_seconds is None else lease_seconds)
    for _ in range(5):
        with transaction.atomic():
            due = RetryItem.objects.filter(status=RetryStatus.PENDING, next_retry_at__lte=now).order_by(
                "-priority", "created_at", "id"
            )
            if connection.vendor == "postgresql":
                due = due.select_for_update(skip_locked=True)
            item = due.first()
            if item is None:
                return None
            token = str(uuid.uuid4())
            won = RetryItem.objects.filter(pk=item.pk, status=RetryStatus.PENDING).update(
                status=RetryStatus.PROCESSING,
                lease_owner=worker[:100],
                lease_token=token,
                lease_expires_at=now + lease,
                updated_at=now,
            )
        if won:
            item.refresh_from_db()
            return item, token
    return None


def complete(item: RetryItem, token: str, result, *, now: datetime | None = None) -> str | None:
    """Record the outcome of a claimed item. Returns the new status, or None when the lease was lost."""
    now = now or timezone.now()
    mine = RetryItem.objects.filter(pk=item.pk, lease_token=token, status=RetryStatus.PROCESSING)
    released = {"lease_token": "", "lease_owner": "", "lease_expires_at": None, "updated_at": now}
    if result.outcome == SyncRun.Outcome.SUCCESS:
        status, fields = (
            RetryStatus.COMPLETED,
            {
                "resolution": f"succeeded on retry {item.retry_count + 1}",
                "completed_at": now,
            },
        )
    elif result.outcome == SyncRun.Outcome.SKIPPED:
        # Another worker is syncing the type right now: look again shortly, without spending an attempt.
        status, fields = RetryStatus.PENDING, {"next_retry_at": now + timedelta(seconds=60)}
    else:
        attempts = item.retry_count + 1
        fields = {
            "retry_count": attempts,
            "last_error_message": (result.error or "")[:2000],
            "last_error_at": now,
            "error_code": result.error_code or "",
        }
        if not result.recoverable:
            status = RetryStatus.FAILED
            fields.update(
                resolution=f"not recoverable ({result.error_code}): needs a person", completed_at=now
            )
        elif attempts >= item.max_retries:
            status = RetryStatus.FAILED
            fields.update(resolution=f"gave up after {attempts} retries", completed_at=now)
        else:
            status = RetryStatus.PENDING
            fields["next_retry_at"] = next_retry_at(
                retry_count=attempts, now=now, retry_after=getattr(result, "retry_after_seconds", None)
            )
    if mine.update(status=status, **fields, **released) == 0:
        log.warning("retry #%s: lease lost before completion; the new owner's result stands", item.pk)
        return None
    item.refresh_from_db()
    if status == RetryStatus.PENDING:
        hold(item)
    elif item.operation == RetryItem.Operation.SYNC:
        release(item.data_type)
    if status == RetryStatus.FAILED and result.recoverable:
        _exhausted(item)
    return status


def _exhausted(item: RetryItem) -> None:
    """Tell whoever listens (the alerts) that the queue gave up on `item`."""
    release(item.data_type)
    for receiver, response in signals.retry_exhausted.send_robust(sender=RetryItem, item=item):
        if isinstance(response, Exception):
            # An alert problem must not undo the queue's bookkeeping.
            log.error("%s failed for exhausted retry #%s", receiver, item.pk, exc_info=response)


def run_item(item: RetryItem):
    """Default handler: perform the item's operation and return its RunResult."""
    from finalesync.restore import restore_latest
    from finalesync.sync import sync_data_type

    if item.operation == RetryItem.Operation.RESTORE:
        return restore_latest(data_type=item.data_type, user=f"retry #{item.pk}")
    return sync_data_type(data_type=item.data_type, trigger=SyncRun.Trigger.RETRY, user=f"retry #{item.pk}")


def process_retries(
    *,
    limit: int | None = None,
    now: datetime | None = None,
    worker: str | None = None,
    handler: Callable[[RetryItem], object] | None = None,
    lease_seconds: float | None = None,
) -> ProcessReport:
    """One run of the processor: reclaim dead workers' items, then claim and run at most `limit` due items,
    one at a time (so a long sync never holds leases on items it has not started)."""
    limit = settings.RETRY_BATCH_SIZE if limit is None else limit
    worker = worker or worker_id()
    handler = handler or run_item
    fixed_now = now
    report = ProcessReport(reclaimed=reclaim_expired(now=now or timezone.now()))
    for _ in range(limit):
        claimed = claim_next(worker=worker, now=fixed_now or timezone.now(), lease_seconds=lease_seconds)
        if claimed is None:
            break
        item, token = claimed
        result = handler(item)
        status = complete(item, token, result, now=fixed_now)
        report.processed.append(
            {
                "id": item.pk,
                "data_type": item.data_type,
                "operation": item.operation,
                "outcome": str(result.outcome),
                "status": status or "lease_lost",
                "error": result.error,
            }
        )
    return report


# --- manual operations (dashboard, admin) --------------------------------------------------------------------
def retry_now(*, item_id: int, user: str, now: datetime | None = None) -> RetryItem:
    """Make a pending item due at once (the processor or a django-q2 task picks it up)."""
    now = now or timezone.now()
    updated = RetryItem.objects.filter(pk=item_id, status=RetryStatus.PENDING).update(
        next_retry_at=now, updated_at=now
    )
    item = RetryItem.objects.get(pk=item_id)
    if not updated:
        raise ValueError(f"retry #{item_id} is {item.status}, not pending; requeue it instead")
    hold(item)
    return item


def cancel(*, item_id: int, user: str, now: datetime | None = None) -> RetryItem:
    now = now or timezone.now()
    updated = RetryItem.objects.filter(pk=item_id, status=RetryStatus.PENDING).update(
        status=RetryStatus.CANCELLED,
        resolution=f"cancelled by {user}"[:200],
        completed_at=now,
        updated_at=now,
    )
    item = RetryItem.objects.get(pk=item_id)
    if not updated:
        raise ValueError(f"retry #{item_id} is {item.status}; only pending retries can be cancelled")
    if item.operation == RetryItem.Operation.SYNC:
        release(item.data_type)
    return item


def requeue(*, item_id: int, user: str, now: datetime | None = None) -> RetryItem:
    """Give a failed or cancelled item a fresh budget and make it due now (if no other retry is open)."""
    now = now or timezone.now()
    item = RetryItem.objects.get(pk=item_id)
    if item.is_open:
        raise ValueError(f"retry #{item_id} is still {item.status}")
    if open_item(item.data_type, item.operation) is not None:
        raise ValueError(f"another retry of {item.operation} {item.data_type} is already open")
    try:
        with transaction.atomic():
            RetryItem.objects.filter(pk=item_id).update(
                status=RetryStatus.PENDING,
                retry_count=0,
                max_retries=max(item.max_retries, settings.RETRY_MAX_RETRIES),
                next_retry_at=now,
                resolution=f"requeued by {user}"[:200],
                completed_at=None,
                created_by=user,
                updated_at=now,
            )
    except IntegrityError:
        raise ValueError(f"another retry of {item.operation} {item.data_type} is already open") from None
    item.refresh_from_db()
    hold(item)
    return item
