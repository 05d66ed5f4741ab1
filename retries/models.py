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
        indexes = [
            models.Index(fields=["data_type", "-created_at"], name="failure_type_created"),
            # The dashboard's 14-day chart groups by day and type: a covering index keeps it off the table.
            models.Index(fields=["created_at", "data_type"], name="failure_created_type"),
        ]

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


class RetryStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (RetryStatus.PENDING, RetryStatus.PROCESSING)


class RetryItem(models.Model):
    """A failed operation waiting for its next automatic attempt (table `sync_retry_queue`).

    At most one open (pending or processing) item per data type and operation, enforced by the database.
    A worker claims an item with a lease; completing it checks the lease token, so a worker whose lease
    expired cannot overwrite the result of the worker that took the item over.
    """

    class Operation(models.TextChoices):
        SYNC = "sync"
        RESTORE = "restore"

    class Priority(models.IntegerChoices):
        LOW = 1
        NORMAL = 2
        HIGH = 3
        CRITICAL = 4

    data_type = models.CharField(max_length=50)
    operation = models.CharField(max_length=20, choices=Operation.choices, default=Operation.SYNC)
    status = models.CharField(max_length=20, choices=RetryStatus.choices, default=RetryStatus.PENDING)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    retry_count = models.PositiveIntegerField(default=0)
    max_retries = models.PositiveIntegerField(default=3)
    next_retry_at = models.DateTimeField()
    last_error_message = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    context = models.JSONField(default=dict, blank=True)
    resolution = models.CharField(max_length=200, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_token = models.CharField(max_length=36, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150, default="system")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "sync_retry_queue"
        ordering = ["-priority", "created_at"]
        verbose_name = "retry"
        constraints = [
            models.UniqueConstraint(
                fields=["data_type", "operation"],
                condition=models.Q(status__in=["pending", "processing"]),
                name="one_open_retry_per_type_operation",
            ),
            models.CheckConstraint(
                condition=models.Q(priority__gte=1, priority__lte=4), name="retry_priority_1_to_4"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_retry_at"], name="retry_due"),
            models.Index(fields=["status", "-priority", "created_at"], name="retry_order"),
        ]

    def __str__(self):
        return f"{self.operation} {self.data_type} ({self.status}, try {self.retry_count}/{self.max_retries})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES
