"""Core models of the sync engine: where to connect, how each data type is scheduled, and what each run did.

The mirrored Finale tables themselves (and their row history) are declared in
`finalesync/datatypes/<type>.py`, one module per type, imported at the bottom of this module so Django sees
them as models of this app.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from . import texts
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


DUE_TOLERANCE = timedelta(seconds=60)


def ratio(*, allow_zero: bool = False):
    """Validators for a share of rows: (0, 1], or [0, 1] with `allow_zero`."""
    low = MinValueValidator(0.0) if allow_zero else MinValueValidator(0.0001, "must be more than 0")
    return [low, MaxValueValidator(1.0, "must be at most 1 (all rows)")]


class ScheduleState(models.TextChoices):
    """Where a type stands with the schedule, from its configuration alone (see DataTypeConfig.schedule)."""

    DUE = "due"
    NOT_DUE = "not_due", "not due"
    DISABLED = "disabled"
    PAUSED = "paused"
    SNOOZED = "snoozed"
    WAITING = "waiting", "waiting for a person"
    HELD = "held", "held for a retry"


# States a person chose (or that simply mean "later"): skipping for them is ordinary, not a problem.
ORDINARY_SKIPS = frozenset({ScheduleState.NOT_DUE, ScheduleState.DISABLED, ScheduleState.PAUSED,
                            ScheduleState.SNOOZED, ScheduleState.HELD})  # fmt: skip


class DataTypeConfig(models.Model):
    """Per-type schedule and safety settings, editable in the admin. One row per registered data type."""

    data_type = models.CharField(max_length=50, unique=True)
    enabled = models.BooleanField(default=True)
    interval_minutes = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1, "the interval is at least 1 minute")],
        help_text="Minutes between scheduled syncs (the cycle runs every 5 minutes).",
    )
    report_url = EncryptedTextField(
        blank=True,
        help_text="Export URL of the Finale report (stored encrypted). The environment wins when set.",
    )
    paused = models.BooleanField(default=False, help_text="A paused type is never synced on schedule.")
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # --- the data checks: a sync beyond one of these is refused until a person confirms it -------------------
    max_drop_ratio = models.FloatField(
        "maximum drop",
        default=0.2,
        validators=ratio(),
        help_text="Refuse a sync that would delete more than this share of the rows (0.2 = 20 %). "
        "Empty data is always refused.",
    )
    max_change_ratio = models.FloatField(
        "maximum change",
        default=0.75,
        validators=ratio(),
        help_text="Refuse a sync that would change the values of more than this share of the rows.",
    )
    max_emptied_ratio = models.FloatField(
        "maximum emptied",
        default=0.5,
        validators=ratio(),
        help_text="Refuse a sync that would empty a column in more than this share of the rows that have it.",
    )
    # --- row history retention ----------------------------------------------------------------------------------
    history_keep_syncs = models.PositiveIntegerField(
        "keep syncs",
        default=50,
        validators=[MinValueValidator(1, "keep at least 1 sync")],
        help_text="Changing syncs whose state can be restored, newest first.",
    )
    history_keep_days = models.PositiveIntegerField(
        "keep days",
        default=14,
        validators=[MinValueValidator(1, "keep at least 1 day")],
        help_text="Every sync of this many days stays restorable too. The latest state always stays.",
    )
    # --- engine state (set by the engine, shown in the admin) -----------------------------------------------------
    # The newest history sequence number of this type: the state the live rows should be in.
    history_seq = models.IntegerField(default=0)
    # The oldest history sequence number that can still be restored (raised by pruning).
    history_floor = models.IntegerField(default=0)
    # How many live rows that state has (a cheap first look at whether someone changed the table by hand).
    live_rows = models.IntegerField(default=0)
    # When a sync last read every line of the report and compared every row (finalesync/unchanged.py): in
    # between, syncs pass over the lines that have not changed since.
    full_compare_at = models.DateTimeField(null=True, blank=True)
    # Set when the last failure needs a person (bad credentials, schema error, suspicious data...): the
    # schedule leaves the type alone until it is resumed, a person runs it, or (for credential failures) the
    # credentials it failed with have changed.
    needs_attention = models.BooleanField(default=False)
    attention_reason = models.TextField(blank=True)
    attention_code = models.CharField(max_length=50, blank=True)
    # A keyed digest of the credentials the failure happened with (never the secret itself).
    attention_fingerprint = models.CharField(max_length=64, blank=True)
    # The schedule leaves the type alone until then: a retry owns the next attempt, or Finale asked us to wait.
    held_until = models.DateTimeField(null=True, blank=True)
    hold_reason = models.CharField(max_length=200, blank=True)
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

    def is_held(self, now=None) -> bool:
        now = now or timezone.now()
        return bool(self.held_until and self.held_until > now)

    def is_due(self, now=None) -> bool:
        """Due when never run, or when the interval has passed since the last run started. A run starts a
        moment after its cycle does, so without the tolerance a 5-minute type would wait for every second
        5-minute cycle."""
        now = now or timezone.now()
        return self.last_run_at is None or self.last_run_at + self.interval <= now + DUE_TOLERANCE

    def next_run_at(self) -> datetime | None:
        return None if self.last_run_at is None else self.last_run_at + self.interval

    def schedule(self, now: datetime | None = None) -> tuple[str, str]:
        """(ScheduleState, a sentence for people): whether the schedule syncs this type now, and if not, why.

        The one place that decides it: the cycle, `runsync`, the dashboard, `synchealth` and the admin ask here.
        """
        now = now or timezone.now()
        if not self.enabled:
            return ScheduleState.DISABLED, "disabled"
        if self.paused:
            return ScheduleState.PAUSED, "paused"
        if self.is_snoozed(now):
            return ScheduleState.SNOOZED, f"snoozed until {texts.clock(self.snoozed_until, now)}"
        if self.needs_attention:
            return (
                ScheduleState.WAITING,
                "waiting for a person after a failure that needs one (fix it, then resume or run it)",
            )
        if self.is_held(now):
            return (
                ScheduleState.HELD,
                f"{self.hold_reason or 'held'} (until {texts.clock(self.held_until, now)})",
            )
        if not self.is_due(now):
            return ScheduleState.NOT_DUE, f"not due until {texts.clock(self.next_run_at(), now)}"
        return ScheduleState.DUE, "due"

    def activity(self, now: datetime | None = None) -> str:
        """'active', or why a person switched the schedule off for this type: disabled, paused, snoozed."""
        state, _ = self.schedule(now)
        return (
            state
            if state in (ScheduleState.DISABLED, ScheduleState.PAUSED, ScheduleState.SNOOZED)
            else "active"
        )

    def skip_reason(self, now: datetime | None = None) -> str | None:
        """Why an unforced run leaves this type alone, or None when it is due and allowed."""
        state, reason = self.schedule(now)
        return None if state == ScheduleState.DUE else reason


class SyncRun(models.Model):
    """One attempt to sync (or restore) one data type: what started it, what happened, what it changed."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        RETRY = "retry"
        CLI = "cli", "CLI"
        RESTORE = "restore"
        # A backup of finalesync 0.1, converted into row history when upgrading.
        IMPORT = "import", "imported backup"

    class Outcome(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCESS = "success"
        FAILED = "failed"
        ROLLED_BACK = "rolled_back", "rolled back"
        SKIPPED = "skipped"

    data_type = models.CharField(max_length=50, db_index=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    triggered_by = models.CharField(max_length=150, default="system")
    forced = models.BooleanField(default=False)
    # A person accepted what the data checks found suspicious, for this run only.
    confirmed = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    item_count = models.IntegerField(default=0)
    created = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    deleted = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    bad_rows = models.IntegerField(default=0)
    # Rows read (a sync) or written (a restore) so far: the dashboard's progress for a long run.
    rows_done = models.IntegerField(default=0)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    recoverable = models.BooleanField(null=True)
    skip_reason = models.CharField(max_length=200, blank=True)
    # The type's history sequence number after this run: the state "after run #N" that a restore returns to.
    history_seq = models.IntegerField(null=True, blank=True)
    # A restore: the sequence number it brings the type back to.
    restore_seq = models.IntegerField(null=True, blank=True)
    duration_ms = models.IntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        permissions = [("restore_syncrun", "Can restore a data type to the state after a run")]
        indexes = [
            models.Index(fields=["data_type", "-started_at"], name="syncrun_type_started"),
            models.Index(fields=["data_type", "history_seq"], name="syncrun_type_seq"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.data_type} {self.trigger} {self.outcome} @ {texts.stamp(self.started_at)}"

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted


class AuditLog(models.Model):
    """One manual action by a person (dashboard, admin or a command): who did what to which target, when,
    and how it ended. Written by `finalesync/audit.py`; never edited."""

    class Source(models.TextChoices):
        DASHBOARD = "dashboard"
        ADMIN = "admin"
        CLI = "cli", "CLI"

    class Action(models.TextChoices):
        SYNC_NOW = "sync_now", "sync now"
        CONFIRM_SYNC = "confirm_sync", "apply a suspicious sync"
        PAUSE = "pause"
        RESUME = "resume"
        SNOOZE = "snooze"
        RETRY_NOW = "retry_now", "retry now"
        CANCEL_RETRY = "cancel_retry", "cancel retry"
        REQUEUE_RETRY = "requeue_retry", "requeue retry"
        RESTORE_BACKUP = "restore_backup", "restore"
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
        return f"{self.username} {self.action} {self.target}: {self.outcome} @ {texts.stamp(self.created_at)}"


# The mirrored tables, one module per data type (imported for Django's model registry).
from .datatypes import registry  # noqa: E402, F401
