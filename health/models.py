"""Connection health per data type, in the table (and with the columns) the original system's SQL reads."""

from django.db import models
from django.utils import timezone

from finalesync.crypto import EncryptedTextField


class HealthStatus(models.TextChoices):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class ConnectionHealth(models.Model):
    data_type = models.CharField(max_length=50, primary_key=True)
    status = models.CharField(max_length=20, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN)
    # None until the first sync of the type has been recorded.
    last_check_time = models.DateTimeField(null=True, blank=True)
    item_count = models.IntegerField(default=0)
    error_message = models.TextField(null=True, blank=True)
    consecutive_failures = models.IntegerField(default=0)
    last_success_time = models.DateTimeField(null=True, blank=True)
    last_failure_time = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "sync_connection_health"
        ordering = ["data_type"]
        verbose_name = "connection health"
        verbose_name_plural = "connection health"

    def __str__(self):
        return f"{self.data_type}: {self.status}"


# --- alerts ---------------------------------------------------------------------------------------------------
class AlertChannel(models.Model):
    """Where alerts go: an email list, a Slack incoming webhook, or a generic signed webhook."""

    class Kind(models.TextChoices):
        EMAIL = "email"
        SLACK = "slack", "Slack webhook"
        WEBHOOK = "webhook", "Generic webhook (HMAC-signed)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    email_to = models.TextField(blank=True, help_text="Comma-separated addresses (email channels).")
    # A Slack webhook URL is itself a credential: stored encrypted, never shown back.
    url = EncryptedTextField(blank=True, help_text="Webhook URL (stored encrypted).")
    signing_secret = EncryptedTextField(
        blank=True, help_text="HMAC-SHA256 key for generic webhooks (stored encrypted)."
    )
    event_kinds = models.JSONField(
        default=list, blank=True, help_text="Event kinds to send; empty means all."
    )
    data_types = models.JSONField(
        default=list, blank=True, help_text="Data types to send about; empty means all."
    )
    from_environment = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    def wants(self, event: str, data_type: str) -> bool:
        if event == "test":
            return True
        return (not self.event_kinds or event in self.event_kinds) and (
            not self.data_types or data_type in self.data_types
        )


class AlertState(models.Model):
    """What alerts last said about a data type, so each change is announced once and reminders are paced."""

    data_type = models.CharField(max_length=50, primary_key=True)
    last_status = models.CharField(max_length=20, default=HealthStatus.UNKNOWN)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_alert_at = models.DateTimeField(null=True, blank=True)
    last_event = models.CharField(max_length=30, blank=True)

    def __str__(self):
        return f"{self.data_type}: {self.last_status}"


class Notification(models.Model):
    """One alert for one channel, stored first and delivered by a task with its own small retry."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=30)
    data_type = models.CharField(max_length=50)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    html = models.TextField(blank=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notification_due")]

    def __str__(self):
        return f"{self.event} {self.data_type} → {self.channel.name} ({self.status})"


# --- history --------------------------------------------------------------------------------------------------
class HealthChange(models.Model):
    """One change of a type's stored health status (`sync_connection_health.status`), kept so the analytics
    page can say how long each type was healthy, degraded or unhealthy instead of guessing.

    Written by health/status_history.py whenever recording leaves a status that differs from the last one kept.
    The first row of a type that existed before the history began was seeded from its status then, at its
    `last_check_time`, with `previous` blank: time before a type's first row counts as not recorded."""

    data_type = models.CharField(max_length=50)
    at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=HealthStatus.choices)
    previous = models.CharField(max_length=20, blank=True)

    class Meta:
        db_table = "sync_health_changes"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["data_type", "at"], name="healthchange_type_at")]

    def __str__(self):
        return f"{self.data_type}: {self.previous or '…'} → {self.status} @ {self.at:%Y-%m-%d %H:%M}"


class AnalyticsDay(models.Model):
    """The analytics figures of one closed local day, for every type, summarised once from the raw tables
    (health/daily.py), so the analytics page reads one row per day instead of scanning the day's runs and
    failure logs again. Kept per time zone: the days' boundaries depend on it."""

    day = models.DateField()
    time_zone = models.CharField(max_length=64)
    figures = models.JSONField()
    # The outages that ended that day (compact rows), and per type how many fell in each time-to-recovery
    # bucket: apart from the rest, so the Prometheus histogram reads only these small sums.
    outages = models.JSONField(default=list)
    recovery = models.JSONField(default=dict)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "sync_analytics_days"
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["day", "time_zone"], name="analyticsday_unique_day_zone")
        ]

    def __str__(self):
        return f"analytics of {self.day} ({self.time_zone})"
