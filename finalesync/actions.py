"""Manual actions on data types: one named function per thing a person can do from the dashboard, the admin
or a command (sync now, apply a reviewed sync, pause, resume, snooze, restore, save credentials).

Each takes keyword-only arguments, does its work through the engine's own functions and writes an audit row
whatever the outcome (finalesync/audit.py). A refused action raises ActionRefused with a message for people.
Actions on the retry queue live in retries/actions.py, alert actions in health/actions.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from . import history, texts
from .audit import Action, ActionRefused, Actor, Outcome, audited, record
from .cycle import CREDENTIAL_ERROR_CODES
from .datatypes import registry
from .models import DataTypeConfig, FinaleConnection, SyncRun
from .sync import ensure_configs

# A report URL's own failures: a new URL can cure these too.
REPORT_URL_ERROR_CODES = CREDENTIAL_ERROR_CODES | {"empty_data"}
MAX_SNOOZE_HOURS = 24 * 7

__all__ = ["ActionRefused", "Actor"]


def _config(data_type: str) -> DataTypeConfig:
    if data_type not in registry.DATATYPES:
        raise ActionRefused(f"unknown data type {data_type!r}; known: {', '.join(registry.NAMES)}")
    return ensure_configs()[data_type]


def _queue(*args, task_name: str, group: str) -> str:
    from django_q.tasks import async_task

    return str(async_task(*args, task_name=task_name, group=group))


# --- syncing -------------------------------------------------------------------------------------------------
def sync_now(*, data_type: str, actor: Actor, force: bool = False, reason: str = "") -> str:
    """Queue a sync of `data_type` as a django-q2 task (the caller never waits for Finale). `force` runs it
    even when paused or waiting for a person; the data checks apply either way. Raises ActionRefused."""

    def work():
        _config(data_type)
        return ""

    target = data_type + (" (forced)" if force else "")
    try:
        work()
    except ActionRefused as exc:
        record(
            actor=actor,
            action=Action.SYNC_NOW,
            target=target,
            outcome=Outcome.REFUSED,
            message=str(exc),
            reason=reason,
        )
        raise
    # Not inside a transaction: with django-q2's sync mode (tests) the task runs right here, and a sync takes
    # its own locks and transactions.
    task = _queue(
        "finalesync.tasks.sync_type",
        data_type,
        SyncRun.Trigger.MANUAL,
        force,
        actor.name,
        task_name=f"{'forced ' if force else ''}manual sync {data_type}",
        group="sync",
    )
    message = (
        f"{'Forced sync' if force else 'Sync'} of {data_type} queued (task {task[:8]}); it appears under sync "
        "runs when a worker has run it. The data checks apply as always."
    )
    record(actor=actor, action=Action.SYNC_NOW, target=target, outcome=Outcome.QUEUED, message=message,
           reason=reason, data_type=data_type)  # fmt: skip
    return message


def refused_run(run_id: int) -> SyncRun:
    """A run the data checks refused as suspicious (the only kind a person can review and apply)."""
    run = SyncRun.objects.filter(pk=run_id).first()
    if run is None:
        raise ActionRefused(f"there is no sync run #{run_id}")
    if run.error_code not in ("suspicious_drop", "suspicious_change") or "evidence" not in run.details:
        raise ActionRefused(f"sync run #{run_id} was not refused as suspicious: there is nothing to confirm")
    newer = SyncRun.objects.filter(
        data_type=run.data_type, outcome=SyncRun.Outcome.SUCCESS, started_at__gt=run.started_at
    ).exists()
    if newer:
        raise ActionRefused(f"{run.data_type} has synced since run #{run_id}; its evidence is out of date")
    return run


def confirm_sync(*, run_id: int, actor: Actor, reason: str = "") -> str:
    """Apply, once, a sync like the refused run `run_id` after a person reviewed its evidence: a new sync is
    queued that accepts at most what the review showed (a little more in case Finale moved on since)."""
    try:
        run = refused_run(run_id)
    except ActionRefused as exc:
        record(actor=actor, action=Action.CONFIRM_SYNC, target=f"sync run #{run_id}", outcome=Outcome.REFUSED,
               message=str(exc), reason=reason)  # fmt: skip
        raise
    if not reason.strip():
        message = "say why this change is real (the reason is kept in the audit log)"
        record(actor=actor, action=Action.CONFIRM_SYNC, target=f"sync run #{run_id}", outcome=Outcome.REFUSED,
               message=message, data_type=run.data_type)  # fmt: skip
        raise ActionRefused(message)
    task = _queue(
        "finalesync.tasks.sync_type",
        run.data_type,
        SyncRun.Trigger.MANUAL,
        True,
        actor.name,
        run.pk,
        task_name=f"confirmed sync {run.data_type}",
        group="sync",
    )
    message = (
        f"Confirmed sync of {run.data_type} queued (task {task[:8]}): it applies at most what run #{run_id} "
        "showed; anything beyond that is refused again."
    )
    record(actor=actor, action=Action.CONFIRM_SYNC, target=f"{run.data_type}: sync run #{run_id}",
           outcome=Outcome.QUEUED, message=message, reason=reason, data_type=run.data_type)  # fmt: skip
    return message


# --- the schedule --------------------------------------------------------------------------------------------
def pause(*, data_type: str, actor: Actor, reason: str = "") -> str:
    """Stop scheduled syncs of `data_type` until it is resumed (manual syncs still run)."""

    def work():
        config = _config(data_type)
        if config.paused:
            return f"{data_type} was already paused."
        DataTypeConfig.objects.filter(pk=config.pk).update(paused=True, updated_at=timezone.now())
        return f"{data_type} paused: the schedule leaves it alone until it is resumed."

    return audited(
        actor=actor, action=Action.PAUSE, target=data_type, data_type=data_type, reason=reason, work=work
    )


def resume(*, data_type: str, actor: Actor, reason: str = "") -> str:
    """Let the schedule sync `data_type` again: clears pause, snooze and "needs a person"."""

    def work():
        config = _config(data_type)
        DataTypeConfig.objects.filter(pk=config.pk).update(
            paused=False,
            snoozed_until=None,
            needs_attention=False,
            attention_reason="",
            attention_code="",
            attention_fingerprint="",
            updated_at=timezone.now(),
        )
        lifted = [
            what
            for what, was in (
                ("paused", config.paused),
                ("snoozed", config.is_snoozed()),
                ("waiting for a person", config.needs_attention),
            )
            if was
        ]
        if not lifted:
            return f"{data_type} was not paused; nothing changed."
        return f"{data_type} resumed (was {', '.join(lifted)}); the next cycle syncs it when it is due."

    return audited(
        actor=actor, action=Action.RESUME, target=data_type, data_type=data_type, reason=reason, work=work
    )


def snooze(
    *, data_type: str, actor: Actor, hours: float, reason: str = "", now: datetime | None = None
) -> str:
    """Leave `data_type` alone on schedule for `hours` (0 < hours <= one week)."""

    def work():
        if not 0 < hours <= MAX_SNOOZE_HOURS:
            raise ActionRefused(f"snooze for 0 to {MAX_SNOOZE_HOURS} hours, not {hours}")
        config = _config(data_type)
        until = (now or timezone.now()) + timedelta(hours=hours)
        DataTypeConfig.objects.filter(pk=config.pk).update(snoozed_until=until, updated_at=timezone.now())
        return f"{data_type} snoozed for {hours:g} h, until {texts.clock(until, now)}."

    return audited(
        actor=actor, action=Action.SNOOZE, target=f"{data_type} for {hours:g} h", data_type=data_type,
        reason=reason, work=work,
    )  # fmt: skip


# --- restoring ------------------------------------------------------------------------------------------------
@dataclass
class RestorePreview:
    """What restoring a type to the state after run `run` would change, counted against the live rows now."""

    data_type: str
    run: SyncRun
    seq: int
    live_rows: int = 0
    rows_after: int = 0
    would_create: int = 0
    would_update: int = 0
    would_delete: int = 0
    unchanged: int = 0
    examples: dict[str, list[str]] = field(default_factory=lambda: {"create": [], "update": [], "delete": []})

    @property
    def changes(self) -> int:
        return self.would_create + self.would_update + self.would_delete


def restore_point(run_id: int) -> SyncRun:
    """The run whose resulting state a person wants back; ActionRefused unless it is still restorable."""
    run = SyncRun.objects.filter(pk=run_id).first()
    if run is None:
        raise ActionRefused(f"there is no sync run #{run_id}")
    config = _config(run.data_type)
    if run.history_seq is None or not history.is_restorable(config, run.history_seq):
        raise ActionRefused(
            f"the state after run #{run_id} cannot be restored (it changed nothing, failed, or its history was "
            f"pruned); list what can be: python manage.py restorebackup --list {run.data_type}"
        )
    return run


def preview_restore(*, run_id: int, max_examples: int = 5) -> RestorePreview:
    """Compare the state after run `run_id` with the live rows, without changing anything. Raises
    ActionRefused when that state cannot be restored."""
    run = restore_point(run_id)
    diff = history.compare(registry.get(run.data_type), seq=run.history_seq)
    return RestorePreview(
        data_type=run.data_type,
        run=run,
        seq=run.history_seq,
        live_rows=diff.live_rows,
        rows_after=diff.rows_after,
        would_create=diff.created,
        would_update=diff.updated,
        would_delete=diff.deleted,
        unchanged=diff.unchanged,
        examples={
            "create": diff.samples.get("created", [])[:max_examples],
            "update": diff.samples.get("updated", [])[:max_examples],
            "delete": diff.samples.get("deleted", [])[:max_examples],
        },
    )


def _check_restore(run_id: int, reason: str) -> RestorePreview:
    if not reason.strip():
        raise ActionRefused("say why you restore (the reason is kept in the audit log)")
    preview = preview_restore(run_id=run_id)
    if not preview.changes:
        raise ActionRefused(
            f"the live {preview.data_type} rows already are the state after run #{run_id}: nothing would change"
        )
    return preview


def queue_restore(*, run_id: int, actor: Actor, reason: str = "", pause_type: bool = False) -> str:
    """Queue a restore of a type to the state after run `run_id` as a django-q2 task (never inside a web
    request), optionally pausing the type so the next scheduled sync does not overwrite it. Refused without
    a reason, when nothing would change, or when that state is no longer kept."""
    target = f"state after run #{run_id}"
    data_type = SyncRun.objects.filter(pk=run_id).values_list("data_type", flat=True).first() or ""

    def work():
        preview = _check_restore(run_id, reason)
        queued = SyncRun.objects.create(
            data_type=preview.data_type,
            trigger=SyncRun.Trigger.RESTORE,
            triggered_by=actor.name,
            outcome=SyncRun.Outcome.QUEUED,
            restore_seq=preview.seq,
            details={"reason": reason, "restore_of_run": run_id},
        )
        if pause_type:
            DataTypeConfig.objects.filter(data_type=preview.data_type).update(
                paused=True, updated_at=timezone.now()
            )
        transaction.on_commit(
            lambda: _queue(
                "finalesync.tasks.restore_type",
                queued.pk,
                task_name=f"restore {preview.data_type}",
                group="restore",
            )
        )
        return (
            f"Restore of {preview.data_type} to the state after run #{run_id} queued as run #{queued.pk} "
            f"({preview.would_create:,} to add, {preview.would_update:,} to change, {preview.would_delete:,} to "
            f"remove)." + (" The type is paused so the schedule does not overwrite it; resume it when ready." if pause_type
                           else " The next scheduled sync will bring Finale's data back unless you pause the type.")
        )  # fmt: skip

    return audited(
        actor=actor, action=Action.RESTORE_BACKUP, target=target, data_type=data_type, reason=reason, work=work,
        outcome=Outcome.QUEUED,
    )  # fmt: skip


def restore_now(*, run_id: int, actor: Actor, reason: str = "", pause_type: bool = False):
    """Restore in the caller's process (the `restorebackup` command), audited. Returns the run's result."""
    from .restore import restore

    target = f"state after run #{run_id}"
    try:
        preview = _check_restore(run_id, reason)
    except ActionRefused as exc:
        data_type = SyncRun.objects.filter(pk=run_id).values_list("data_type", flat=True).first() or ""
        record(actor=actor, action=Action.RESTORE_BACKUP, target=target, outcome=Outcome.REFUSED, message=str(exc),
               reason=reason, data_type=data_type)  # fmt: skip
        raise
    if pause_type:
        DataTypeConfig.objects.filter(data_type=preview.data_type).update(
            paused=True, updated_at=timezone.now()
        )
    result = restore(data_type=preview.data_type, seq=preview.seq, user=actor.name, reason=reason)
    outcome = {SyncRun.Outcome.SUCCESS: Outcome.SUCCESS, SyncRun.Outcome.SKIPPED: Outcome.REFUSED}.get(
        str(result.outcome), Outcome.FAILED
    )
    message = (
        f"Restored {preview.data_type} to the state after run #{run_id}: {result.item_count:,} rows "
        f"({result.created:,} added, {result.updated:,} changed, {result.deleted:,} removed)."
        if result.outcome == SyncRun.Outcome.SUCCESS
        else f"not restored: {result.error or result.skip_reason}"
    )
    record(actor=actor, action=Action.RESTORE_BACKUP, target=target, outcome=outcome, message=message,
           reason=reason, data_type=preview.data_type)  # fmt: skip
    if result.outcome != SyncRun.Outcome.SUCCESS:
        raise ActionRefused(message)
    return result


# --- credentials and settings (admin) -------------------------------------------------------------------------
def credentials_changed(
    *, actor: Actor, changed: list[str], data_type: str | None = None, reason: str = ""
) -> str:
    """Record that credentials were saved (field names only, never values) and lift "needs a person" from the
    types whose failure new credentials can cure: all types for the Finale connection, or the one `data_type`
    whose report URL changed."""

    def work():
        now = timezone.now()
        if data_type is None:
            FinaleConnection.objects.update_or_create(pk=1, defaults={"credentials_changed_at": now})
            names, curable = registry.NAMES, CREDENTIAL_ERROR_CODES
        else:
            names, curable = [data_type], REPORT_URL_ERROR_CODES
        cleared = list(
            DataTypeConfig.objects.filter(
                data_type__in=names, needs_attention=True, attention_code__in=curable
            )
            .order_by("data_type")
            .values_list("data_type", flat=True)
        )
        DataTypeConfig.objects.filter(data_type__in=cleared).update(
            needs_attention=False,
            attention_reason="",
            attention_code="",
            attention_fingerprint="",
            updated_at=now,
        )
        message = f"Saved {', '.join(changed)}."
        if cleared:
            message += f" {', '.join(cleared)} will be synced again by the schedule."
        return message

    return audited(
        actor=actor,
        action=Action.CHANGE_CREDENTIALS,
        target=f"report URL of {data_type}" if data_type else "Finale connection",
        data_type=data_type or "",
        reason=reason,
        work=work,
    )
