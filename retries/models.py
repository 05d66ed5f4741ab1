"""The retry queue (table sync_retry_queue) and the failure log (table sync_failure_logs)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from finalesync import texts


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
    # The type had a restorable state when it failed (its row history), as the seed's column says.
    backup_available = models.BooleanField(default=False)
    recovery_attempted = models.BooleanField(default=False)
    recovery_succeeded = models.BooleanField(null=True)
    rolled_back = models.BooleanField(default=False)
    # The history seq the live rows were put back to, when they had been damaged (see sync_run for its run).
    restored_seq = models.IntegerField(null=True, blank=True)
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
        return f"{self.data_type}: {self.error_code or 'error'} @ {texts.stamp(self.created_at)}"


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
    # A failed retry whose type synced successfully later: history, no longer a problem to count.
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "sync_retry_queue"
        ordering = ["-priority", "created_at"]
        verbose_name = "retry"
        verbose_name_plural = "retries"
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
