"""Manual actions: one named function per thing a person can do from the dashboard, the admin or a command.

Each takes keyword-only arguments, does its work through the engine's own functions (retries/queue.py,
retries/restore.py, the django-q2 task of finalesync/tasks.py), and writes an AuditLog row whatever the
outcome. A refused action raises ActionRefused with a message for people; its audit row is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.functions import Collate
from django.utils import timezone

from .datatypes import registry
from .models import AuditLog, DataTypeConfig, FinaleConnection, SyncRun
from .redact import redact

Action = AuditLog.Action
Outcome = AuditLog.Outcome

# Error codes whose cure is new credentials (or a new report URL): saving those lifts "needs a person".
CREDENTIAL_ERROR_CODES = frozenset({"auth", "html_response", "configuration"})
REPORT_URL_ERROR_CODES = CREDENTIAL_ERROR_CODES | {"not_found"}
MAX_SNOOZE_HOURS = 24 * 7
TEST_ALERT_PERMISSION = "health.change_alertchannel"


class ActionRefused(Exception):
    """The action was not carried out (bad state, unknown target, a lock held...). The message says why."""


@dataclass(frozen=True)
class Actor:
    """Who acts and from where. `user` is None for a command's --user name that is not an account."""

    name: str
    source: str
    user: object | None = None

    @classmethod
    def for_user(cls, user, source: str) -> Actor:
        return cls(name=user.get_username(), source=source, user=user)

    @classmethod
    def named(cls, name: str, source: str = AuditLog.Source.CLI) -> Actor:
        """An actor from a command's --user: linked to the account of that name when there is one."""
        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: name}).first()
        return cls(name=name, source=source, user=user)


def record(
    *,
    actor: Actor,
    action: str,
    target: str,
    outcome: str,
    message: str = "",
    reason: str = "",
    data_type: str = "",
) -> AuditLog:
    """Write one audit entry (messages are redacted: an entry never holds a secret)."""
    return AuditLog.objects.create(
        user=actor.user if getattr(actor.user, "pk", None) else None,
        username=actor.name[:150],
        source=actor.source,
        action=action,
        target=target[:200],
        data_type=data_type,
        outcome=outcome,
        message=redact(message)[:2000],
        reason=redact(reason)[:2000],
    )


def _audited(
    *, actor: Actor, action: str, target: str, data_type: str, reason: str, work: Callable[[], str]
) -> str:
    """Run `work` and its audit row in one transaction; on refusal, record the refusal and re-raise."""
    try:
        with transaction.atomic():
            message = work()
            record(
                actor=actor,
                action=action,
                target=target,
                outcome=Outcome.SUCCESS,
                message=message,
                reason=reason,
                data_type=data_type,
            )
        return message
    except ActionRefused as exc:
        record(
            actor=actor,
            action=action,
            target=target,
            outcome=Outcome.REFUSED,
            message=str(exc),
            reason=reason,
            data_type=data_type,
        )
        raise


def _config(data_type: str) -> DataTypeConfig:
    if data_type not in registry.DATATYPES:
        raise ActionRefused(f"unknown data type {data_type!r}; known: {', '.join(registry.NAMES)}")
    from .sync import ensure_configs

    return ensure_configs()[data_type]


# --- data types ----------------------------------------------------------------------------------------------
def sync_now(*, data_type: str, actor: Actor, force: bool = False, reason: str = "") -> str:
    """Queue a sync of `data_type` as a django-q2 task (the caller never waits for Finale). `force` also
    confirms a large drop and lifts "needs a person". Returns a message; raises ActionRefused."""
    try:
        _config(data_type)
    except ActionRefused as exc:
        record(
            actor=actor,
            action=Action.SYNC_NOW,
            target=data_type,
            outcome=Outcome.REFUSED,
            message=str(exc),
            reason=reason,
        )
        raise
    from django_q.tasks import async_task

    # Not inside a transaction: with django-q2's sync mode (tests) the task runs right here, and a sync takes
    # its own locks and transactions.
    task_id = async_task(
        "finalesync.tasks.sync_type",
        data_type,
        SyncRun.Trigger.MANUAL,
        force,
        actor.name,
        task_name=f"{'forced ' if force else ''}manual sync {data_type}",
        group="sync",
    )
    message = (
        f"{'Forced sync' if force else 'Sync'} of {data_type} queued (task {str(task_id)[:8]}); "
        "it appears under sync runs when a worker has run it."
    )
    record(
        actor=actor,
        action=Action.SYNC_NOW,
        target=data_type + (" (forced)" if force else ""),
        outcome=Outcome.QUEUED,
        message=message,
        reason=reason,
        data_type=data_type,
    )
    return message


def pause(*, data_type: str, actor: Actor, reason: str = "") -> str:
    """Stop scheduled syncs of `data_type` until it is resumed (manual syncs still run)."""

    def work():
        config = _config(data_type)
        if config.paused:
            return f"{data_type} was already paused."
        DataTypeConfig.objects.filter(pk=config.pk).update(paused=True, updated_at=timezone.now())
        return f"{data_type} paused: the schedule leaves it alone until it is resumed."

    return _audited(
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

    return _audited(
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
        local = timezone.localtime(until)
        return f"{data_type} snoozed for {hours:g} h, until {local:%Y-%m-%d %H:%M %Z}."

    return _audited(
        actor=actor,
        action=Action.SNOOZE,
        target=f"{data_type} for {hours:g} h",
        data_type=data_type,
        reason=reason,
        work=work,
    )


# --- the retry queue -----------------------------------------------------------------------------------------
def _retry_target(item_id: int) -> tuple[str, str]:
    from retries.models import RetryItem

    item = RetryItem.objects.filter(pk=item_id).values("data_type", "operation").first()
    if item is None:
        return f"retry #{item_id}", ""
    return f"retry #{item_id} ({item['operation']} {item['data_type']})", item["data_type"]


@contextmanager
def _retry_refusals(item_id: int):
    """The queue's own refusals (unknown item, wrong state) become ActionRefused with a person's wording."""
    from retries.models import RetryItem

    try:
        yield
    except RetryItem.DoesNotExist:
        raise ActionRefused(f"there is no retry #{item_id}") from None
    except ValueError as exc:
        raise ActionRefused(str(exc)) from None


def _kick_processor() -> None:
    """Run the retry processor as soon as the transaction commits, instead of at its next 2-minute tick."""
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task("finalesync.tasks.process_retries", task_name="retry now", group="retries")
    )


def retry_now(*, item_id: int, actor: Actor, reason: str = "") -> str:
    """Run retry `item_id` now: a pending item is made due, a failed or cancelled one is requeued with a
    fresh budget; then the processor is started. Raises ActionRefused for a processing or unknown item."""
    from retries import queue
    from retries.models import RetryItem, RetryStatus

    target, data_type = _retry_target(item_id)

    def work():
        with _retry_refusals(item_id):
            item = RetryItem.objects.get(pk=item_id)
            if item.status == RetryStatus.PENDING:
                queue.retry_now(item_id=item_id, user=actor.name)
            elif item.status == RetryStatus.PROCESSING:
                raise ActionRefused(f"retry #{item_id} is being processed right now")
            else:
                queue.requeue(item_id=item_id, user=actor.name)
        _kick_processor()
        return f"Retry #{item_id} of {item.operation} {item.data_type} is due now; the retry processor was started."

    return _audited(
        actor=actor, action=Action.RETRY_NOW, target=target, data_type=data_type, reason=reason, work=work
    )


def cancel_retry(*, item_id: int, actor: Actor, reason: str = "") -> str:
    """Cancel pending retry `item_id`. Raises ActionRefused when it is not pending."""
    from retries import queue

    target, data_type = _retry_target(item_id)

    def work():
        with _retry_refusals(item_id):
            item = queue.cancel(item_id=item_id, user=actor.name)
        return f"Retry #{item_id} of {item.operation} {item.data_type} cancelled."

    return _audited(
        actor=actor, action=Action.CANCEL_RETRY, target=target, data_type=data_type, reason=reason, work=work
    )


def requeue_retry(*, item_id: int, actor: Actor, reason: str = "") -> str:
    """Give failed or cancelled retry `item_id` a fresh budget; the processor takes it at its next run."""
    from retries import queue

    target, data_type = _retry_target(item_id)

    def work():
        with _retry_refusals(item_id):
            item = queue.requeue(item_id=item_id, user=actor.name)
        return (
            f"Retry #{item_id} of {item.operation} {item.data_type} requeued with {item.max_retries} "
            "attempts; the processor takes it at its next run."
        )

    return _audited(
        actor=actor, action=Action.REQUEUE_RETRY, target=target, data_type=data_type, reason=reason, work=work
    )


# --- backups -------------------------------------------------------------------------------------------------
def restore_backup(*, backup_id: int, actor: Actor, reason: str = "") -> str:
    """Put a data type's rows back to backup `backup_id` (the current rows are backed up first, so it can be
    undone). Runs now, in the caller: the restore is one transaction of its own. Raises ActionRefused when
    the backup is unknown, a sync holds the type, or the restore failed (nothing was changed then)."""
    from retries.models import Backup
    from retries.restore import restore_backup as restore

    backup = Backup.objects.filter(pk=backup_id).first()
    target = f"backup #{backup_id}" + (f" ({backup.data_type})" if backup else "")
    data_type = backup.data_type if backup else ""

    def refuse(outcome: str, message: str):
        record(
            actor=actor,
            action=Action.RESTORE_BACKUP,
            target=target,
            outcome=outcome,
            message=message,
            reason=reason,
            data_type=data_type,
        )
        raise ActionRefused(message)

    if backup is None:
        refuse(Outcome.REFUSED, f"there is no backup #{backup_id}")
    run = restore(backup_id=backup_id, user=actor.name, reason=reason)
    if run.outcome == SyncRun.Outcome.SKIPPED:
        refuse(Outcome.REFUSED, f"not restored: {run.skip_reason}; try again when it has finished")
    if run.outcome != SyncRun.Outcome.SUCCESS:
        refuse(Outcome.FAILED, f"restore of backup #{backup_id} failed, nothing was changed: {run.error}")
    undo = run.details.get("undo_backup")
    message = (
        f"Restored {run.data_type} to backup #{backup_id}: {run.item_count:,} rows ({run.created:,} created, "
        f"{run.updated:,} updated, {run.deleted:,} deleted)."
        + (f" The rows before are kept as backup #{undo}: restore it to undo this." if undo else "")
    )
    record(
        actor=actor,
        action=Action.RESTORE_BACKUP,
        target=target,
        outcome=Outcome.SUCCESS,
        message=message,
        reason=reason,
        data_type=data_type,
    )
    return message


@dataclass
class RestorePreview:
    """What restoring a backup would change, counted against the live rows now."""

    backup: object
    live_rows: int = 0
    would_create: int = 0
    would_update: int = 0
    would_delete: int = 0
    unchanged: int = 0
    examples: dict[str, list[str]] = field(default_factory=lambda: {"create": [], "update": [], "delete": []})

    @property
    def changes(self) -> int:
        return self.would_create + self.would_update + self.would_delete


def preview_restore(*, backup_id: int, max_examples: int = 5) -> RestorePreview:
    """Compare backup `backup_id` with the live rows of its type, key by key, without changing anything.

    Both sides are read as streams in key order (the backup is stored ordered by key in byte order) and
    merged, so memory stays flat whatever the table size. Raises Backup.DoesNotExist."""
    from retries.backups import backup_rows
    from retries.models import Backup

    backup = Backup.objects.get(pk=backup_id)
    datatype = registry.get(backup.data_type)
    preview = RestorePreview(backup=backup)
    collation = "C" if connection.vendor == "postgresql" else "BINARY"
    live = (
        datatype.model.objects.order_by(Collate("natural_key", collation))
        .values_list("natural_key", "row_hash")
        .iterator(chunk_size=5000)
    )
    saved = _backup_pairs(backup_rows(backup))

    def note(kind: str, key: str):
        if len(preview.examples[kind]) < max_examples:
            preview.examples[kind].append(key)

    old = next(live, None)
    new = next(saved, None)
    while old is not None or new is not None:
        if new is None or (old is not None and old[0] < new[0]):
            preview.live_rows += 1
            preview.would_delete += 1
            note("delete", old[0])
            old = next(live, None)
        elif old is None or new[0] < old[0]:
            preview.would_create += 1
            note("create", new[0])
            new = next(saved, None)
        else:
            preview.live_rows += 1
            if old[1] == new[1]:
                preview.unchanged += 1
            else:
                preview.would_update += 1
                note("update", new[0])
            old, new = next(live, None), next(saved, None)
    return preview


def _backup_pairs(reader: Iterator[list[str]]) -> Iterator[tuple[str, str]]:
    header = next(reader, None) or []
    if "natural_key" not in header or "row_hash" not in header:
        return
    key_at, hash_at = header.index("natural_key"), header.index("row_hash")
    for row in reader:
        yield row[key_at], row[hash_at]


# --- credentials and settings (admin) -------------------------------------------------------------------------
def last_failure_codes() -> dict[str, str]:
    """The error code of each type's most recent failed or rolled-back run."""
    codes = {}
    failed = SyncRun.objects.filter(outcome__in=[SyncRun.Outcome.FAILED, SyncRun.Outcome.ROLLED_BACK])
    for name in registry.NAMES:
        code = (
            failed.filter(data_type=name).order_by("-started_at", "-id").values_list("error_code", flat=True)
        )
        codes[name] = code.first() or ""
    return codes


def credentials_changed(
    *, actor: Actor, changed: list[str], data_type: str | None = None, reason: str = ""
) -> str:
    """Record that credentials were saved (field names only, never values) and lift "needs a person" from
    the types whose last failure new credentials can cure: all types for the Finale connection, or the one
    `data_type` whose report URL changed."""

    def work():
        now = timezone.now()
        if data_type is None:
            FinaleConnection.objects.update_or_create(pk=1, defaults={"credentials_changed_at": now})
            names, curable = registry.NAMES, CREDENTIAL_ERROR_CODES
        else:
            names, curable = [data_type], REPORT_URL_ERROR_CODES
        codes = last_failure_codes()
        cleared = [n for n in names if codes.get(n) in curable]
        DataTypeConfig.objects.filter(data_type__in=cleared, needs_attention=True).update(
            needs_attention=False, attention_reason="", updated_at=now
        )
        message = f"Saved {', '.join(changed)}."
        if cleared:
            message += f" {', '.join(cleared)} will be synced again by the schedule."
        return message

    return _audited(
        actor=actor,
        action=Action.CHANGE_CREDENTIALS,
        target=f"report URL of {data_type}" if data_type else "Finale connection",
        data_type=data_type or "",
        reason=reason,
        work=work,
    )


# --- alerts --------------------------------------------------------------------------------------------------
def send_test_alert(*, channel_id: int, actor: Actor) -> str:
    """Send a test notification through one alert channel now (not via the queue, so the person sees the
    result). Needs the permission to change alert channels (it sends real requests with the channel's stored
    credentials). Returns a message; raises ActionRefused when the channel is unknown, the actor may not, or
    delivery failed."""
    from health.alerts import Event, emit
    from health.models import AlertChannel, Notification
    from health.notify import deliver

    channel = AlertChannel.objects.filter(pk=channel_id).first()
    if channel is None:
        raise ActionRefused(f"no alert channel #{channel_id}")
    if actor.user is None or not actor.user.has_perm(TEST_ALERT_PERMISSION):
        message = f"{actor.name} may not send test notifications (needs {TEST_ALERT_PERMISSION})"
        record(
            actor=actor,
            action=Action.SEND_TEST_ALERT,
            target=f"alert channel {channel.name}",
            outcome=Outcome.REFUSED,
            message=message,
        )
        raise ActionRefused(message)
    [note] = emit(event=Event.TEST, data_type="all types", context={}, channels=[channel])
    status = deliver(note.pk)
    note.refresh_from_db()
    ok = status == Notification.Status.SENT
    message = f"Test notification to {channel.name}: " + ("sent" if ok else f"not sent ({note.last_error})")
    record(
        actor=actor,
        action=Action.SEND_TEST_ALERT,
        target=f"alert channel {channel.name}",
        outcome=Outcome.SUCCESS if ok else Outcome.FAILED,
        message=message,
    )
    if not ok:
        raise ActionRefused(message)
    return message
