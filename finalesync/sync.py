"""The sync pipeline for one data type: lock, fetch and stage, decide, back up, apply, verify, record.

`sync_data_type()` is the one entry point; the runsync command, the django-q2 tasks, the retry processor
and the dashboard all call it. It never raises for a Finale or data problem: the outcome is in the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from health import recording
from retries import backups
from retries.classify import classify
from retries.models import Backup, FailureLog

from .client import FinaleClient, load_credentials
from .datatypes import registry
from .datatypes.base import BadRow, DataType
from .errors import (
    ConfigurationError,
    DataError,
    EmptyData,
    FinaleError,
    MalformedData,
    SuspiciousDrop,
    VerificationFailed,
)
from .models import DataTypeConfig, SyncRun
from .redact import redact
from .staging import Staging

log = logging.getLogger("finalesync.sync")

ROLLBACK_ERRORS = (EmptyData, SuspiciousDrop, VerificationFailed)


@dataclass
class SyncResult:
    """What one run did. `as_json()` is the runsync --json object (a stable interface)."""

    data_type: str
    outcome: str
    item_count: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    bad_rows: int = 0
    error: str | None = None
    error_code: str | None = None
    recoverable: bool | None = None
    retry_enqueued: bool = False
    duration_ms: int = 0
    skip_reason: str = ""
    advice: str = ""
    run_id: int | None = None
    backup_id: int | None = None
    restored_backup_id: int | None = None
    retry_at: str | None = None
    retry_after_seconds: float | None = None
    trigger: str = ""
    bad_examples: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in (SyncRun.Outcome.SUCCESS, SyncRun.Outcome.SKIPPED)

    def as_json(self) -> dict:
        keys = (
            "data_type outcome item_count created updated deleted unchanged error recoverable "
            "retry_enqueued duration_ms"
        ).split()
        data = asdict(self)
        data["outcome"] = str(self.outcome)
        return {k: data[k] for k in keys}


class Progress:
    """Progress callbacks; the default does nothing. runsync passes one that draws a bar."""

    def fetched(self, data_type: str, rows: int) -> None: ...

    def applying(self, data_type: str, rows: int) -> None: ...

    def done(self, data_type: str) -> None: ...


def ensure_configs() -> dict[str, DataTypeConfig]:
    """A configuration row for every registered data type, created with the type's defaults."""
    existing = {c.data_type: c for c in DataTypeConfig.objects.all()}
    for name in registry.NAMES:
        if name not in existing:
            existing[name], _ = DataTypeConfig.objects.get_or_create(
                data_type=name, defaults={"interval_minutes": registry.get(name).default_interval_minutes}
            )
    return existing


def report_url_for(config: DataTypeConfig) -> str:
    """The environment's report URL wins over the admin's."""
    return settings.FINALE_REPORT_URLS.get(config.data_type) or config.report_url


def sync_data_type(
    *,
    data_type: str,
    trigger: str = SyncRun.Trigger.CLI,
    force: bool = False,
    user: str = "system",
    client_factory: Callable[[], FinaleClient] | None = None,
    progress: Progress | None = None,
) -> SyncResult:
    """Sync one data type from Finale, all or nothing.

    `force` applies a drop beyond the configured maximum (a person confirmed it) and clears the
    needs-attention state; it never applies empty data. Returns a SyncResult; raises KeyError for an
    unknown type and only database errors of our own beyond that.
    """
    datatype = registry.get(data_type)
    config = ensure_configs()[data_type]
    progress = progress or Progress()
    started = time.monotonic()
    now = timezone.now()
    run = SyncRun.objects.create(
        data_type=data_type, trigger=trigger, triggered_by=user, forced=force, started_at=now
    )
    result = SyncResult(
        data_type=data_type, outcome=SyncRun.Outcome.RUNNING, run_id=run.pk, trigger=str(trigger)
    )

    from .locks import type_lock

    with type_lock(data_type) as held:
        if not held:
            result.outcome = SyncRun.Outcome.SKIPPED
            result.skip_reason = f"another worker is syncing {data_type} right now"
        else:
            DataTypeConfig.objects.filter(pk=config.pk).update(last_run_at=now, last_skip_reason="")
            try:
                _run(
                    datatype,
                    config,
                    run,
                    result,
                    force=force,
                    client_factory=client_factory,
                    progress=progress,
                )
            except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded, never lost
                _handle_failure(datatype, config, run, result, exc, started=started)
            finally:
                progress.done(data_type)
    result.duration_ms = int((time.monotonic() - started) * 1000)
    _save_run(run, result)
    _after_run(result)
    return result


def _run(datatype: DataType, config, run, result: SyncResult, *, force, client_factory, progress) -> None:
    bad_examples: list[dict] = []
    bad_count = 0

    def on_bad(bad: BadRow):
        nonlocal bad_count
        bad_count += 1
        if len(bad_examples) < 5:
            bad_examples.append({"line": bad.line, "reason": bad.reason, "key": bad.key})

    factory = client_factory or (lambda: FinaleClient(load_credentials()))
    with Staging(datatype) as staging, factory() as client:
        # 1-2. fetch and stage as a stream
        on_progress = lambda n: progress.fetched(datatype.name, n)  # noqa: E731
        if datatype.source == "report":
            url = report_url_for(config)
            if not url:
                raise ConfigurationError(
                    f"No report URL for {datatype.name}: set FINALE_REPORT_URL_{datatype.name.upper()} "
                    "or the data type's report URL in the admin"
                )
            # Rows whose raw cells are what the live row was parsed from are not parsed again.
            known = staging.live_source_hashes()
            with client.report_rows(url, what=f"{datatype.label.lower()} report") as rows:
                staging.load(datatype.records(rows, known=known), on_bad=on_bad, on_progress=on_progress)
            del known
        else:
            collection = client.order_collection()
            staging.load(datatype.records(collection), on_bad=on_bad, on_progress=on_progress)
        duplicates, dup_keys = staging.drop_duplicates()
        for key in dup_keys:
            if len(bad_examples) < 5:
                bad_examples.append({"line": None, "reason": "duplicate key (first row kept)", "key": key})
        bad_count += duplicates
        good = staging.good_count()
        result.bad_rows = bad_count
        result.bad_examples = bad_examples
        result.item_count = good
        progress.fetched(datatype.name, good + bad_count)

        # 3. decide before touching data
        total = good + bad_count
        if total and bad_count / total > settings.SYNC_MAX_BAD_ROW_RATIO:
            raise MalformedData(
                f"{bad_count} of {total} rows of {datatype.name} could not be read "
                f"(more than {settings.SYNC_MAX_BAD_ROW_RATIO:.0%}); first: "
                + "; ".join(f"line {b['line']}: {b['reason']}" for b in bad_examples[:3]),
                details={"bad_rows": bad_count, "rows": total, "examples": bad_examples},
            )
        if good == 0:
            raise EmptyData(
                f"Finale returned no {datatype.label.lower()} rows (header only or nothing usable)"
            )
        live = staging.live_count()
        if live and not force:
            drop = (live - good) / live
            if drop > config.max_drop_ratio:
                raise SuspiciousDrop(
                    f"{datatype.label} would drop from {live:,} to {good:,} rows ({drop:.0%}); "
                    f"the limit is {config.max_drop_ratio:.0%}",
                    details={"live_rows": live, "new_rows": good, "drop_ratio": round(drop, 4)},
                )

        # 4. back up what is there now (committed before anything changes)
        current = backups.content_checksum(datatype)
        backup, _ = backups.backup_current(
            datatype=datatype,
            run=run,
            is_good=_live_is_good(datatype.name, checksum=current[1]),
            current=current,
        )
        result.backup_id = backup.pk if backup else None

        # 5-6. apply in one transaction and verify before it commits
        kept_bad = staging.kept_bad_count() if bad_count else 0
        progress.applying(datatype.name, good)
        with transaction.atomic():
            counts = staging.apply(now=timezone.now(), good=good)
            actual = staging.live_count()
            if actual != good + kept_bad:
                raise VerificationFailed(
                    f"After applying, {datatype.name} has {actual:,} rows where {good + kept_bad:,} were expected; "
                    "the change was rolled back",
                    details={"actual": actual, "expected": good + kept_bad},
                )
            changed = counts.created or counts.updated or counts.deleted
            after = backups.content_checksum(datatype) if changed or backup is None else current
            run.details = {**run.details, "content_checksum": after[1]}
            # Written in the apply transaction: if the worker dies right after the commit, the next run
            # still knows which content is the good one (and will not "restore" over real Finale data).
            SyncRun.objects.filter(pk=run.pk).update(details=run.details)
        result.created, result.updated, result.deleted, result.unchanged = (
            counts.created,
            counts.updated,
            counts.deleted,
            counts.unchanged,
        )
        result.item_count = actual
        if changed:
            # Keep the new good state too, so a later rollback returns to exactly what this sync left.
            backups.backup_current(
                datatype=datatype, run=run, reason=Backup.Reason.POST_SYNC, is_good=True, current=after
            )
    result.outcome = SyncRun.Outcome.SUCCESS
    now = timezone.now()
    recording.record_success(data_type=datatype.name, item_count=result.item_count, now=now)
    DataTypeConfig.objects.filter(pk=config.pk).update(needs_attention=False, attention_reason="")


def last_good_checksum(data_type: str) -> str | None:
    """The content checksum the last applied run (sync or restore) of `data_type` left, or None."""
    details = (
        SyncRun.objects.filter(data_type=data_type, details__has_key="content_checksum")
        .order_by("-started_at", "-id")
        .values_list("details", flat=True)
        .first()
    )
    return (details or {}).get("content_checksum")


def _live_is_good(data_type: str, *, checksum: str | None = None) -> bool:
    """The live rows are 'good' when they are what the last applied run left behind. Pass the live
    `checksum` when it was just computed."""
    expected = last_good_checksum(data_type)
    if expected is None:
        return True
    if checksum is None:
        checksum = backups.content_checksum(registry.get(data_type))[1]
    return checksum == expected


def _handle_failure(datatype: DataType, config, run, result: SyncResult, exc: Exception, *, started) -> None:
    classification = classify(exc)
    error = exc if isinstance(exc, FinaleError) else None
    message = redact(str(exc)) if error else redact(f"{type(exc).__name__}: {exc}")
    if not error:
        log.exception("unexpected error syncing %s", datatype.name)
        if connection.in_atomic_block:
            raise exc
    result.error = message
    result.error_code = classification.code
    result.recoverable = classification.recoverable
    result.advice = error.advice if error else "An unexpected error; see the server log."
    result.outcome = SyncRun.Outcome.FAILED
    result.retry_after_seconds = getattr(error, "retry_after", None)

    backup_available = backups.latest_backup(datatype.name, good_only=True) is not None
    recovery_attempted = recovery_succeeded = False
    restored = None
    if isinstance(exc, DataError):
        # The new data was refused and nothing was applied. If the live rows are not the last good ones
        # (someone emptied the table, a crash elsewhere), put the last good backup back.
        restored, recovery_attempted, recovery_succeeded = _restore_if_damaged(datatype)
        if isinstance(exc, ROLLBACK_ERRORS):
            result.outcome = SyncRun.Outcome.ROLLED_BACK
        result.restored_backup_id = restored.pk if restored else None
        if recovery_attempted and not recovery_succeeded:
            # Our own database failed the restore (a lock, a timeout): the retry queue tries it again.
            from retries.models import RetryItem
            from retries.queue import enqueue_retry

            enqueue_retry(
                data_type=datatype.name,
                operation=RetryItem.Operation.RESTORE,
                error=f"restoring backup #{restored.pk} after refused data failed",
                error_code="restore_failed",
                priority=RetryItem.Priority.CRITICAL,
                context={"backup": restored.pk, "sync_run": run.pk},
            )
    now = timezone.now()
    recording.record_failure(
        data_type=datatype.name,
        error_message=message,
        recoverable=bool(classification.recoverable),
        now=now,
    )
    if not classification.recoverable:
        DataTypeConfig.objects.filter(pk=config.pk).update(
            needs_attention=True, attention_reason=message[:1000]
        )
    FailureLog.objects.create(
        data_type=datatype.name,
        error_message=message,
        error_code=classification.code,
        error_details=_details(error, result),
        recoverable=classification.recoverable,
        record_count=result.item_count,
        duration_ms=int((time.monotonic() - started) * 1000),
        trigger=run.trigger,
        backup_available=backup_available,
        recovery_attempted=recovery_attempted,
        recovery_succeeded=recovery_succeeded if recovery_attempted else None,
        rolled_back=result.outcome == SyncRun.Outcome.ROLLED_BACK,
        backup=restored,
        sync_run=run,
    )
    log.warning("sync of %s %s: %s", datatype.name, result.outcome, message)


def _details(error: FinaleError | None, result: SyncResult) -> dict:
    details = {"advice": result.advice}
    if error is not None:
        if error.status is not None:
            details["status"] = error.status
        if error.excerpt:
            details["excerpt"] = error.excerpt
        details.update({k: v for k, v in error.details.items() if k not in details})
    if result.bad_examples:
        details.setdefault("examples", result.bad_examples)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        details["retry_after"] = retry_after
    return details


def _restore_if_damaged(datatype: DataType) -> tuple[Backup | None, bool, bool]:
    """After refusing new data: if the live rows are no longer what the last successful sync left (the
    table was emptied or edited), restore the latest good backup. Returns (backup, attempted, succeeded)."""
    if _live_is_good(datatype.name):
        return None, False, False
    good = backups.latest_backup(datatype.name, good_only=True)
    if good is None:
        return None, False, False
    try:
        from retries.restore import apply_backup

        apply_backup(backup=good, datatype=datatype)
    except Exception:  # noqa: BLE001 - recorded as a failed recovery; the log has the traceback
        log.exception("restoring backup #%s of %s failed", good.pk, datatype.name)
        return good, True, False
    return good, True, True


def _save_run(run: SyncRun, result: SyncResult) -> None:
    run.finished_at = timezone.now()
    run.outcome = result.outcome
    for name in (
        "item_count",
        "created",
        "updated",
        "deleted",
        "unchanged",
        "bad_rows",
        "duration_ms",
        "skip_reason",
    ):
        setattr(run, name, getattr(result, name))
    run.error = result.error or ""
    run.error_code = result.error_code or ""
    run.recoverable = result.recoverable
    run.backup_id = result.backup_id or result.restored_backup_id
    if result.bad_examples:
        run.details = {**run.details, "bad_examples": result.bad_examples}
    if result.advice:
        run.details = {**run.details, "advice": result.advice}
    run.save()


def _after_run(result: SyncResult) -> None:
    """The seam for what follows a run: the retry queue (recoverable failures) and alerts."""
    from health import alerts
    from retries import queue

    queue.after_sync(result)
    # Alerts never break a sync: at worst one is lost and the log says why.
    try:
        alerts.after_sync(result)
    except Exception:  # noqa: BLE001
        log.exception("raising alerts after the %s sync failed", result.data_type)
