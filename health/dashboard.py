"""What the operator dashboard shows, read in a fixed number of queries whatever the table sizes.

Every list is bounded (the newest N rows through an index) and every count is one aggregate, so the page
costs the same with ten failure logs or a hundred thousand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from finalesync.datatypes import registry
from finalesync.models import AuditLog, SyncRun
from finalesync.redact import redact
from retries.models import OPEN_STATUSES, Backup, FailureLog, RetryItem, RetryStatus

from . import chart
from .grading import Grade
from .models import Notification
from .system import TypeHealth, get_sync_system_health

CHART_DAYS = 14
RECENT_FAILURES = 12
CLOSED_RETRIES = 10
SYNC_RUNS = 50
AUDIT_ENTRIES = 20
FAILED_ALERTS = 10
SHORT_ERROR = 180

STATUS_TONE = {"healthy": "ok", "degraded": "warn", "unhealthy": "bad", "unknown": "muted"}
GRADE_HELP = [
    (Grade.EXCELLENT, "Healthy, synced within its interval plus grace, and no failure in the last 24 hours."),
    (
        Grade.GOOD,
        "Healthy, but stale (no success within interval + grace) or it failed in the last 24 hours.",
    ),
    (Grade.FAIR, "Degraded: recoverable failures (network, timeout, 429, 5xx); a retry is queued."),
    (
        Grade.POOR,
        "Unhealthy: a failure that needs a person, 3 or more failures in a row, or no success for more "
        "than 4 intervals (the schedule has stopped for it).",
    ),
    (Grade.UNKNOWN, "Never checked: no sync of this type has run yet."),
]


def shorten(text: str | None, limit: int = SHORT_ERROR) -> str:
    """Redacted, one line, at most `limit` characters."""
    text = " ".join(redact(text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass
class Card:
    health: TypeHealth
    tone: str
    retry: RetryItem | None
    backup: Backup | None
    short_error: str
    full_error: str
    colour: str


def latest_good_backups() -> dict[str, Backup]:
    """The newest good, non-empty backup of each type (one query)."""
    newest = (
        Backup.objects.filter(data_type=OuterRef("data_type"), is_good=True, row_count__gt=0)
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    good = Backup.objects.filter(is_good=True, row_count__gt=0, id=Subquery(newest)).defer("columns")
    return {b.data_type: b for b in good}


def failure_counts(*, now, days: int = CHART_DAYS) -> dict:
    """(day, type) → failures over the last `days` local days, in one query. Each day is a range on the
    created_at column itself (no per-row date function), so the index serves it on every database."""
    first_day = timezone.localtime(now).date() - timedelta(days=days - 1)
    day_list = [first_day + timedelta(days=i) for i in range(days)]
    bounds = [timezone.make_aware(datetime.combine(d, time.min)) for d in day_list]
    bounds.append(bounds[-1] + timedelta(days=1))
    per_day = {
        f"d{i}": Count("id", filter=Q(created_at__gte=bounds[i], created_at__lt=bounds[i + 1]))
        for i in range(days)
    }
    rows = (
        FailureLog.objects.filter(created_at__gte=bounds[0], created_at__lt=bounds[-1])
        .values("data_type")
        .annotate(**per_day)
        .order_by()
    )
    return {(day_list[i], r["data_type"]): r[f"d{i}"] for r in rows for i in range(days) if r[f"d{i}"]}


def dashboard_context(*, now=None) -> dict:
    now = now or timezone.now()
    health = get_sync_system_health(now=now)
    names = registry.NAMES
    colours = chart.type_colours(names)

    open_retries = list(
        RetryItem.objects.filter(status__in=OPEN_STATUSES).order_by("-priority", "created_at")
    )
    closed_retries = list(
        RetryItem.objects.filter(status__in=[RetryStatus.FAILED, RetryStatus.CANCELLED]).order_by(
            "-updated_at", "-id"
        )[:CLOSED_RETRIES]
    )
    backups = latest_good_backups()
    open_by_type = {}
    for item in open_retries:
        if item.operation == RetryItem.Operation.SYNC:
            open_by_type.setdefault(item.data_type, item)

    cards = [
        Card(
            health=t,
            tone="muted" if t.paused else STATUS_TONE.get(t.effective_status, "muted"),
            retry=open_by_type.get(t.data_type),
            backup=backups.get(t.data_type),
            short_error=shorten(t.error_message or t.attention_reason),
            full_error=shorten(t.error_message or t.attention_reason, 2000),
            colour=colours[t.data_type],
        )
        for t in health.data_types
    ]

    failures = list(
        FailureLog.objects.select_related("backup")
        .defer("backup__columns")
        .order_by("-created_at", "-id")[:RECENT_FAILURES]
    )
    for log in failures:
        log.short_error = shorten(log.error_message, 140)
        log.full_error = shorten(log.error_message, 2000)
        log.restore_candidate = log.backup if log.backup_id else backups.get(log.data_type)

    counts = failure_counts(now=now)
    runs = list(SyncRun.objects.defer("details").order_by("-started_at")[:SYNC_RUNS])
    for run in runs:
        run.short_error = shorten(run.error or run.skip_reason, 90)
    failed_notifications = list(
        Notification.objects.filter(status=Notification.Status.FAILED)
        .select_related("channel")
        .order_by("-created_at", "-id")[:FAILED_ALERTS]
    )
    deliveries = Notification.objects.aggregate(
        failed=Count("id", filter=Q(status=Notification.Status.FAILED)),
        sent_24h=Count(
            "id", filter=Q(status=Notification.Status.SENT, created_at__gte=now - timedelta(hours=24))
        ),
    )
    audit = list(AuditLog.objects.order_by("-created_at", "-id")[:AUDIT_ENTRIES])
    for entry in audit:
        entry.short_message = shorten(entry.message, 120)

    return {
        "now": now,
        "health": health,
        "overall_tone": STATUS_TONE.get(health.status, "muted"),
        "cards": cards,
        "open_retries": open_retries,
        "closed_retries": closed_retries,
        "failures": failures,
        "chart_svg": chart.failures_chart(
            counts, names=names, last_day=timezone.localtime(now).date(), days=CHART_DAYS
        ),
        "chart_total": sum(counts.values()),
        "chart_days": CHART_DAYS,
        "legend": chart.legend(names),
        "runs": runs,
        "audit": audit,
        "failed_notifications": failed_notifications,
        "failed_notifications_total": deliveries["failed"],
        "alerts_sent_24h": deliveries["sent_24h"],
        "grade_help": GRADE_HELP,
        "refresh_seconds": getattr(settings, "DASHBOARD_REFRESH_SECONDS", 15),
    }
