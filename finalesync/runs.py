"""The life of one run of a data type, shared by syncs and restores: the SyncRun row, the type's lock, the
classification of whatever went wrong, what the engine itself does about it, and the `run_finished` signal.

    with Run(datatype, trigger=..., user=...) as run:
        if run.held:
            ...work, calling run.heartbeat(rows) now and then and run.succeed(...) at the end...
    return run.result

An exception inside the block is classified (finalesync/classify.py), recorded on the run and never escapes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from . import history
from .classify import to_error
from .credentials import fingerprint
from .datatypes.base import DataType
from .errors import (
    DataError,
    EmptyData,
    FinaleError,
    LostLock,
    RateLimited,
    SuspiciousChange,
    SuspiciousDrop,
    VerificationFailed,
)
from .locks import type_lock
from .models import DataTypeConfig, SyncRun
from .redact import redact
from .signals import run_finished

log = logging.getLogger("finalesync.sync")

Outcome = SyncRun.Outcome
# Refused data whose run counts as a rollback: the previous data stays (or is restored).
ROLLBACK_ERRORS = (EmptyData, SuspiciousDrop, SuspiciousChange, VerificationFailed)
# How often a long run writes its progress for the dashboard.
PROGRESS_EVERY = 2.0


@dataclass(frozen=True)
class RunResult:
    """What one run did. `as_json()` is the `runsync --json` object (a stable interface)."""

    data_type: str
    outcome: str
    trigger: str = ""
    run_id: int | None = None
    item_count: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    bad_rows: int = 0
    error: str | None = None
    error_code: str | None = None
    recoverable: bool | None = None
    retry_after_seconds: float | None = None
    advice: str | None = None
    skip_reason: str | None = None
    duration_ms: int = 0
    confirmed: bool = False
    # The type had a restorable state before this run (the seed's `backup_available`).
    restore_point_available: bool = False
    recovery_attempted: bool = False
    recovery_succeeded: bool | None = None
    # The live rows were found damaged and put back to this history sequence number.
    restored_seq: int | None = None
    # Putting them back failed on our own database: worth a retry of the restore.
    restore_failed: bool = False
    needs_person: bool = False
    details: dict = field(default_factory=dict)
    followups: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.SUCCESS, Outcome.SKIPPED)

    @property
    def retry_enqueued(self) -> bool:
        return bool(self.followups.get("retry_enqueued"))

    @property
    def retry_at(self) -> str | None:
        """When the retry the queue scheduled for this failure runs (ISO time), if it scheduled one."""
        return self.followups.get("retry_at")

    def as_json(self) -> dict:
        return {
            "data_type": self.data_type,
            "outcome": str(self.outcome),
            "item_count": self.item_count,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "error": self.error,
            "recoverable": self.recoverable,
            "retry_enqueued": self.retry_enqueued,
            "duration_ms": self.duration_ms,
            "skip_reason": self.skip_reason,
            "advice": self.followups.get("advice") or self.advice,
        }


class Run:
    """One run of one data type, from its SyncRun row to the signal. See the module docstring."""

    def __init__(
        self,
        datatype: DataType,
        *,
        trigger: str,
        user: str = "system",
        forced: bool = False,
        confirmed: bool = False,
        run: SyncRun | None = None,
        details: dict | None = None,
        progress: Callable[[int], None] | None = None,
    ):
        self.datatype = datatype
        self.started = time.monotonic()
        self.progress = progress
        self.values: dict[str, Any] = {"confirmed": confirmed}
        now = timezone.now()
        if run is None:
            run = SyncRun.objects.create(
                data_type=datatype.name,
                trigger=trigger,
                triggered_by=user,
                forced=forced,
                confirmed=confirmed,
                started_at=now,
                details=details or {},
            )
        else:
            SyncRun.objects.filter(pk=run.pk).update(outcome=Outcome.RUNNING, started_at=now)
            run.outcome, run.started_at = Outcome.RUNNING, now
        self.run = run
        self.config = DataTypeConfig.objects.get(data_type=datatype.name)
        self.lease = None
        self._lock = None
        self._last_progress = 0.0
        self.result: RunResult | None = None

    @property
    def held(self) -> bool:
        return bool(self.lease)

    def __enter__(self) -> Run:
        self._lock = type_lock(self.datatype.name)
        self.lease = self._lock.__enter__()
        if not self.lease:
            self.values.update(
                outcome=Outcome.SKIPPED,
                skip_reason=f"another worker is syncing {self.datatype.name} right now",
            )
            return self
        now = timezone.now()
        DataTypeConfig.objects.filter(pk=self.config.pk).update(last_run_at=now, last_skip_reason="")
        # A run still marked running while we hold the lock was left by a worker that was killed.
        SyncRun.objects.filter(
            data_type=self.datatype.name, outcome=Outcome.RUNNING, started_at__lt=self.run.started_at
        ).exclude(pk=self.run.pk).update(
            outcome=Outcome.FAILED,
            finished_at=now,
            error="the worker running this stopped before it finished (closed by the next run of this type)",
            error_code="worker_died",
        )
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc is not None:
                self.fail(exc)
            elif "outcome" not in self.values:
                self.values["outcome"] = Outcome.FAILED
        finally:
            self._lock.__exit__(None, None, None)
        self._finish()
        return True  # every failure is classified and recorded, never lost

    # --- during the run -------------------------------------------------------------------------------------
    def heartbeat(self, rows: int) -> None:
        """Keep the lock alive and show progress (cheap to call often)."""
        self.lease.renew()
        if self.progress:
            self.progress(rows)
        if time.monotonic() - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = time.monotonic()
            SyncRun.objects.filter(pk=self.run.pk).update(rows_done=rows)

    def note(self, *, details: dict | None = None, **values) -> None:
        """Remember facts for the run's record (details are merged)."""
        self.values.update(values)
        if details:
            self.values.setdefault("details", {}).update(details)

    def succeed(self, *, seq: int, item_count: int, diff=None) -> None:
        self.values.update(outcome=Outcome.SUCCESS, item_count=item_count, history_seq=seq)
        if diff is not None:
            self.values.update(
                created=diff.created, updated=diff.updated, deleted=diff.deleted, unchanged=diff.unchanged
            )
        DataTypeConfig.objects.filter(pk=self.config.pk).update(
            needs_attention=False,
            attention_reason="",
            attention_code="",
            attention_fingerprint="",
            held_until=None,
            hold_reason="",
        )

    def fail(self, exc: BaseException) -> None:
        error = to_error(exc)
        if not isinstance(exc, FinaleError):
            log.exception("unexpected error in the %s run of %s", self.run.trigger, self.datatype.name)
        if connection.needs_rollback:
            # The failure broke a transaction someone else holds: nothing can be recorded; let it roll back.
            raise exc
        if isinstance(error, LostLock):
            self.values.update(outcome=Outcome.SKIPPED, skip_reason=error.message, advice=error.advice)
            return
        self.values.update(
            outcome=Outcome.ROLLED_BACK if isinstance(error, ROLLBACK_ERRORS) else Outcome.FAILED,
            error=redact(str(error)),
            error_code=error.code,
            recoverable=error.recoverable,
            advice=error.advice,
            retry_after_seconds=getattr(error, "retry_after", None),
            restore_point_available=self.config.history_seq > 0,
            needs_person=not error.recoverable,
        )
        self.values.setdefault("details", {}).update(_error_details(error))
        if isinstance(error, DataError) and self.held:
            self._restore_if_damaged()
        updates = {}
        if not error.recoverable:
            updates.update(
                needs_attention=True,
                attention_reason=redact(str(error))[:1000],
                attention_code=error.code,
                attention_fingerprint=fingerprint(self.datatype, self.config),
            )
        if isinstance(error, RateLimited) and error.retry_after:
            updates.update(
                held_until=timezone.now() + timedelta(seconds=error.retry_after),
                hold_reason="Finale asked us to wait (HTTP 429 Retry-After)",
            )
        if updates:
            DataTypeConfig.objects.filter(pk=self.config.pk).update(**updates)

    def _restore_if_damaged(self) -> None:
        """After refusing new data: if the live rows are no longer the state the last run left (someone
        emptied or edited the table), put that state back from the row history."""
        seq = self.config.history_seq
        if seq == 0:
            return
        try:
            damaged = history.live_differs(self.datatype, seq=seq)
        except Exception:  # noqa: BLE001 - cannot tell: leave the rows alone, the log has why
            log.exception("checking the live rows of %s against their history failed", self.datatype.name)
            return
        if not damaged:
            return
        self.values["recovery_attempted"] = True
        try:
            new_seq, _ = history.apply_state(self.datatype, seq=seq, lease=self.lease, run=self.run)
        except Exception:  # noqa: BLE001 - recorded as a failed recovery; the log has the traceback
            log.exception("restoring %s to its last good state failed", self.datatype.name)
            self.values.update(recovery_succeeded=False, restore_failed=True)
            return
        self.values.update(recovery_succeeded=True, restored_seq=seq, history_seq=new_seq)

    # --- the end --------------------------------------------------------------------------------------------
    def _finish(self) -> None:
        v = self.values
        run = self.run
        run.finished_at = timezone.now()
        run.duration_ms = int((time.monotonic() - self.started) * 1000)
        run.outcome = v.get("outcome", Outcome.FAILED)
        for name in ("item_count", "created", "updated", "deleted", "unchanged", "bad_rows"):
            setattr(run, name, v.get(name, 0))
        run.error = v.get("error") or ""
        run.error_code = v.get("error_code") or ""
        run.recoverable = v.get("recoverable")
        run.skip_reason = (v.get("skip_reason") or "")[:200]
        if v.get("history_seq") is not None:
            run.history_seq = v["history_seq"]
        details = {**run.details, **v.get("details", {})}
        if v.get("advice"):
            details["advice"] = v["advice"]
        run.details = details
        run.save()
        result = RunResult(
            data_type=self.datatype.name,
            outcome=run.outcome,
            trigger=str(run.trigger),
            run_id=run.pk,
            item_count=run.item_count,
            created=run.created,
            updated=run.updated,
            deleted=run.deleted,
            unchanged=run.unchanged,
            bad_rows=run.bad_rows,
            error=v.get("error"),
            error_code=v.get("error_code"),
            recoverable=v.get("recoverable"),
            retry_after_seconds=v.get("retry_after_seconds"),
            advice=v.get("advice"),
            skip_reason=v.get("skip_reason"),
            duration_ms=run.duration_ms,
            confirmed=bool(v.get("confirmed")),
            restore_point_available=bool(v.get("restore_point_available")),
            recovery_attempted=bool(v.get("recovery_attempted")),
            recovery_succeeded=v.get("recovery_succeeded"),
            restored_seq=v.get("restored_seq"),
            restore_failed=bool(v.get("restore_failed")),
            needs_person=bool(v.get("needs_person")),
            details=details,
        )
        followups: dict = {}
        for receiver, response in run_finished.send_robust(sender=SyncRun, result=result):
            if isinstance(response, Exception):
                # A receiver's failure (an alert that could not be stored) must never undo the run.
                log.error(
                    "%s failed after the %s run of %s",
                    getattr(receiver, "__qualname__", receiver),
                    run.trigger,
                    run.data_type,
                    exc_info=response,
                )
            elif isinstance(response, dict):
                followups.update(response)
        self.result = replace(result, followups=followups)


def _error_details(error: FinaleError) -> dict:
    details: dict = {}
    if error.status is not None:
        details["status"] = error.status
    if error.excerpt:
        details["excerpt"] = error.excerpt
    if error.details:
        details["evidence"] = error.details
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        details["retry_after"] = retry_after
    return details
