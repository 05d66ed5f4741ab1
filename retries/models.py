"""Failure logs, backups (and, with the retry queue issue, the retry queue itself)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class FailureLog(models.Model):
    """One failed or rolled-back sync: what Finale answered, what we did, and whether recovery worked."""

    data_type = models.CharField(max_length=50, db_index=True)
    error_message = models.TextField()
    error_code = models.CharField(max_length=50, blank=True)
    error_details = models.JSONField(default=dict, blank=True)
    recoverable = models.BooleanField(null=True)
    record_count = models.IntegerField(default=0, help_text="Rows received from Finale before it failed.")
    duration_ms = models.IntegerField(default=0)
    trigger = models.CharField(max_length=20)
    backup_available = models.BooleanField(default=False)
    recovery_attempted = models.BooleanField(default=False)
    recovery_succeeded = models.BooleanField(null=True)
    rolled_back = models.BooleanField(default=False)
    backup = models.ForeignKey("Backup", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sync_run = models.ForeignKey(
        "finalesync.SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="failure_logs"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "sync_failure_logs"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["data_type", "-created_at"], name="failure_type_created")]

    def __str__(self):
        return f"{self.data_type}: {self.error_code or 'error'} @ {self.created_at:%Y-%m-%d %H:%M}"


class Backup(models.Model):
    """A compressed copy of one data type's live rows, taken before a sync or a restore changes them.

    The rows are a gzip-compressed CSV (header first) split over BackupChunk rows, so neither taking nor
    restoring a backup holds it whole in memory. `checksum` is over the (key, row hash) pairs.
    """

    class Reason(models.TextChoices):
        PRE_SYNC = "pre_sync", "before a sync"
        POST_SYNC = "post_sync", "after a successful sync"
        PRE_RESTORE = "pre_restore", "before a restore"
        MANUAL = "manual", "manual"

    data_type = models.CharField(max_length=50, db_index=True)
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.PRE_SYNC)
    row_count = models.IntegerField()
    checksum = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField(default=0)
    columns = models.JSONField(default=list)
    # True when these rows are what the last successful sync left (so a rollback may return to them).
    is_good = models.BooleanField(default=True)
    sync_run = models.ForeignKey(
        "finalesync.SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["data_type", "-created_at"], name="backup_type_created")]

    def __str__(self):
        return (
            f"Backup #{self.pk} of {self.data_type} ({self.row_count} rows, {self.created_at:%Y-%m-%d %H:%M})"
        )


class BackupChunk(models.Model):
    backup = models.ForeignKey(Backup, on_delete=models.CASCADE, related_name="chunks")
    seq = models.IntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["backup", "seq"]
        constraints = [models.UniqueConstraint(fields=["backup", "seq"], name="backupchunk_unique_seq")]

    def __str__(self):
        return f"chunk {self.seq} of backup #{self.backup_id}"
