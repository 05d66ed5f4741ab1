"""Core models of the sync engine: where to connect, how each data type is scheduled, and what each run did.

The mirrored Finale tables themselves are declared in `finalesync/datatypes/<type>.py`, one module per type,
and are imported at the bottom of this module so Django sees them as models of this app.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from .crypto import EncryptedTextField


class FinaleConnection(models.Model):
    """The Finale account and API credentials (a single row). Values in the environment win over these.

    Finale's host is deliberately not stored: it comes only from the environment (FINALE_BASE_URL), so
    nobody who may edit this row can send the credentials to a host of their choosing."""

    account = models.CharField(max_length=100, blank=True)
    api_key = EncryptedTextField(blank=True)
    api_secret = EncryptedTextField(blank=True)
    credentials_changed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Finale connection"

    def __str__(self):
        return f"Finale account {self.account or settings.FINALE_ACCOUNT or '(not set)'}"

    @classmethod
    def load(cls) -> FinaleConnection:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj

    @property
    def base_url(self) -> str:
        """Always the environment's FINALE_BASE_URL (read-only; for callers that still ask the row)."""
        return settings.FINALE_BASE_URL


DUE_TOLERANCE = timedelta(seconds=60)


class DataTypeConfig(models.Model):
    """Per-type schedule and safety settings, editable in the admin. One row per registered data type."""

    data_type = models.CharField(max_length=50, unique=True)
    enabled = models.BooleanField(default=True)
    interval_minutes = models.PositiveIntegerField(default=60)
    report_url = EncryptedTextField(
        blank=True,
        help_text="Export URL of the Finale report (stored encrypted). The environment wins when set.",
    )
    paused = models.BooleanField(default=False, help_text="A paused type is never synced on schedule.")
    snoozed_until = models.DateTimeField(null=True, blank=True)
    max_drop_ratio = models.FloatField(
        default=0.5,
        help_text="Refuse a sync that would remove more than this share of the rows (0 rows: always).",
    )
    backup_keep_count = models.PositiveIntegerField(default=10)
    backup_keep_days = models.PositiveIntegerField(default=7)
    # Set when the last failure needs a person (bad credentials, schema error, suspicious drop...): the
    # schedule leaves the type alone until credentials change, it is resumed, or a forced run succeeds.
    needs_attention = models.BooleanField(default=False)
    attention_reason = models.TextField(blank=True)
    # Lease lock for databases without advisory locks (SQLite); see finalesync/locks.py.
    lock_owner = models.CharField(max_length=100, blank=True)
    lock_expires_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_skip_reason = models.CharField(max_length=200, blank=True)
    last_skipped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["data_type"]
        verbose_name = "data type"

    def __str__(self):
        return self.data_type

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.interval_minutes)

    def is_snoozed(self, now=None) -> bool:
        now = now or timezone.now()
        return bool(self.snoozed_until and self.snoozed_until > now)

    def is_due(self, now=None) -> bool:
        """Due when never run, or when the interval has passed since the last run started. A run starts a
        moment after its cycle does, so without the tolerance a 5-minute type would wait for every second
        5-minute cycle."""
        now = now or timezone.now()
        return self.last_run_at is None or self.last_run_at + self.interval <= now + DUE_TOLERANCE

    def next_run_at(self):
        return None if self.last_run_at is None else self.last_run_at + self.interval


class SyncRun(models.Model):
    """One attempt to sync one data type: what started it, what happened, and what it changed."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        RETRY = "retry"
        CLI = "cli"
        RESTORE = "restore"

    class Outcome(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAILED = "failed"
        ROLLED_BACK = "rolled_back"
        SKIPPED = "skipped"

    data_type = models.CharField(max_length=50, db_index=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    triggered_by = models.CharField(max_length=150, default="system")
    forced = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    item_count = models.IntegerField(default=0)
    created = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    deleted = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    bad_rows = models.IntegerField(default=0)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    recoverable = models.BooleanField(null=True)
    skip_reason = models.CharField(max_length=200, blank=True)
    backup = models.ForeignKey(
        "retries.Backup", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    duration_ms = models.IntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["data_type", "-started_at"], name="syncrun_type_started")]

    def __str__(self):
        return f"{self.data_type} {self.trigger} {self.outcome} @ {self.started_at:%Y-%m-%d %H:%M}"


class AuditLog(models.Model):
    """One manual action by a person (dashboard, admin or a command): who did what to which target, when,
    and how it ended. Written by `finalesync/actions.py`; never edited."""

    class Source(models.TextChoices):
        DASHBOARD = "dashboard"
        ADMIN = "admin"
        CLI = "cli"

    class Action(models.TextChoices):
        SYNC_NOW = "sync_now", "sync now"
        PAUSE = "pause"
        RESUME = "resume"
        SNOOZE = "snooze"
        RETRY_NOW = "retry_now", "retry now"
        CANCEL_RETRY = "cancel_retry", "cancel retry"
        REQUEUE_RETRY = "requeue_retry", "requeue retry"
        RESTORE_BACKUP = "restore_backup", "restore backup"
        CHANGE_CREDENTIALS = "change_credentials", "change credentials"
        CHANGE_SETTINGS = "change_settings", "change settings"
        SEND_TEST_ALERT = "send_test_alert", "send test alert"

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        QUEUED = "queued"
        REFUSED = "refused"
        FAILED = "failed"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too: the entry must still say who it was after the account is deleted, and a command's
    # --user need not be an account at all.
    username = models.CharField(max_length=150)
    source = models.CharField(max_length=20, choices=Source.choices)
    action = models.CharField(max_length=30, choices=Action.choices)
    target = models.CharField(max_length=200)
    data_type = models.CharField(max_length=50, blank=True, db_index=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    message = models.TextField(blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        db_table = "sync_audit_log"
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self):
        return (
            f"{self.username} {self.action} {self.target}: {self.outcome} @ {self.created_at:%Y-%m-%d %H:%M}"
        )


# The mirrored tables, one module per data type (imported for Django's model registry).
from .datatypes import registry  # noqa: E402, F401
