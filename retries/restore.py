"""Putting a data type's rows back to a backup, in one transaction, after backing up the current rows."""

from __future__ import annotations

import time

from django.db import transaction
from django.utils import timezone

from finalesync.datatypes import registry
from finalesync.datatypes.base import DataType
from finalesync.errors import VerificationFailed
from finalesync.models import SyncRun
from finalesync.staging import ApplyCounts, Staging

from . import backups
from .models import Backup


def apply_backup(*, backup: Backup, datatype: DataType, run=None) -> ApplyCounts:
    """Make the live rows of `datatype` equal to `backup`, all or nothing. The caller holds the type lock
    (or is the sync that holds it). With `run` (a restore's SyncRun), the restored content is recorded as
    the good state in the same transaction. Raises VerificationFailed when the result does not match."""
    with Staging(datatype, with_stamps=True) as staging:
        staged = backups.stage_backup(backup, staging)
        with transaction.atomic():
            counts = staging.apply(now=timezone.now(), good=staged)
            count, checksum = backups.content_checksum(datatype)
            if count != backup.row_count or checksum != backup.checksum:
                raise VerificationFailed(
                    f"Restoring backup #{backup.pk} gave {count} rows (checksum {checksum[:8]}), expected "
                    f"{backup.row_count} (checksum {backup.checksum[:8]}); nothing was changed"
                )
            if run is not None:
                # A person chose these rows: they are now the good state a later rollback returns to.
                run.details = {**run.details, "content_checksum": backup.checksum}
                SyncRun.objects.filter(pk=run.pk).update(details=run.details)
    return counts


def restore_backup(*, backup_id: int, user: str = "system", reason: str = ""):
    """Restore a data type to backup `backup_id`, first backing up its current rows so the restore can be
    undone. Records a SyncRun with trigger 'restore'. Returns the SyncRun; raises Backup.DoesNotExist for
    an unknown id; when a sync of the type is running the run is recorded as skipped."""
    from finalesync.locks import type_lock
    from finalesync.sync import _live_is_good

    backup = Backup.objects.get(pk=backup_id)
    datatype = registry.get(backup.data_type)
    started = time.monotonic()
    run = SyncRun.objects.create(
        data_type=datatype.name,
        trigger=SyncRun.Trigger.RESTORE,
        triggered_by=user,
        details={"restore_of_backup": backup.pk, "reason": reason},
    )
    with type_lock(datatype.name) as held:
        if not held:
            run.outcome = SyncRun.Outcome.SKIPPED
            run.skip_reason = f"another worker is syncing {datatype.name} right now"
        else:
            try:
                undo, _ = backups.backup_current(
                    datatype=datatype,
                    run=run,
                    reason=Backup.Reason.PRE_RESTORE,
                    is_good=_live_is_good(datatype.name),
                )
                counts = apply_backup(backup=backup, datatype=datatype, run=run)
            except Exception as exc:
                run.outcome = SyncRun.Outcome.FAILED
                run.error = str(exc)[:2000]
                run.error_code = getattr(exc, "code", "restore_failed")
            else:
                run.outcome = SyncRun.Outcome.SUCCESS
                run.backup = undo
                run.created, run.updated, run.deleted, run.unchanged = (
                    counts.created,
                    counts.updated,
                    counts.deleted,
                    counts.unchanged,
                )
                run.item_count = backup.row_count
                run.details = {**run.details, "undo_backup": undo.pk if undo else None}
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.save()
    return run


def restore_latest_good(*, data_type: str, user: str = "system"):
    """Restore `data_type` to its latest good backup (the retry queue's 'restore' operation). Returns a
    result with `outcome`, `error`, `error_code`, `recoverable` like a SyncResult."""
    from finalesync.sync import SyncResult

    backup = backups.latest_backup(data_type, good_only=True)
    if backup is None:
        return SyncResult(
            data_type=data_type,
            outcome="failed",
            error="no good backup to restore",
            error_code="no_backup",
            recoverable=False,
        )
    run = restore_backup(backup_id=backup.pk, user=user, reason="retry of a failed restore")
    return SyncResult(
        data_type=data_type,
        outcome=run.outcome,
        item_count=run.item_count,
        error=run.error or None,
        error_code=run.error_code or None,
        # A restore that failed on our own database (a lock, a timeout) is worth another go.
        recoverable=None if run.outcome == "success" else True,
        run_id=run.pk,
        trigger="retry",
    )
