"""What the operator dashboard shows, read in a fixed number of queries whatever the table sizes.

Every list is bounded (the newest N rows through an index) and every count is one aggregate, so the page
costs the same with ten failure logs or a hundred thousand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.utils import timezone

from finalesync import texts
from finalesync.datatypes import registry
from finalesync.models import AuditLog, DataTypeConfig, SyncRun
from retries.models import FailureLog, RetryItem, RetryStatus

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


shorten = texts.shorten


@dataclass
class Card:
    health: TypeHealth
    tone: str
    retry: RetryItem | None
    # The newest run whose resulting state can be restored.
    restore_point: SyncRun | None
    short_error: str
    full_error: str
    colour: str


def latest_restore_points(configs: dict[str, DataTypeConfig]) -> dict[str, SyncRun]:
    """The newest restorable (changing, successful) run of each type, in one query."""
    changing = SyncRun.objects.filter(outcome=SyncRun.Outcome.SUCCESS, history_seq__isnull=False).filter(
        Q(created__gt=0) | Q(updated__gt=0) | Q(deleted__gt=0)
    )
    newest = (
        changing.filter(data_type=OuterRef("data_type"))
        .order_by("-history_seq", "-started_at")
        .values("id")[:1]
    )
    points = changing.filter(id=Subquery(newest)).defer("details")
    return {p.data_type: p for p in points if p.data_type in configs and restorable(p, configs[p.data_type])}


def restorable(run: SyncRun, config: DataTypeConfig) -> bool:
    """Whether the state after `run` is still kept in the row history."""
    return (
        run.history_seq is not None and max(config.history_floor, 1) <= run.history_seq <= config.history_seq
    )


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

    open_retries = health.open_retries
    closed_retries = list(
        RetryItem.objects.filter(status__in=[RetryStatus.FAILED, RetryStatus.CANCELLED]).order_by(
            "-updated_at", "-id"
        )[:CLOSED_RETRIES]
    )
    configs = health.configs
    points = latest_restore_points(configs)
    open_by_type = {}
    for item in open_retries:
        if item.operation == RetryItem.Operation.SYNC:
            open_by_type.setdefault(item.data_type, item)

    cards = [
        Card(
            health=t,
            tone=t.tone,
            retry=open_by_type.get(t.data_type),
            restore_point=points.get(t.data_type),
            short_error=shorten(t.error_message or t.attention_reason),
            full_error=shorten(t.error_message or t.attention_reason, 2000),
            colour=colours[t.data_type],
        )
        for t in health.data_types
    ]

    failures = list(FailureLog.objects.order_by("-created_at", "-id")[:RECENT_FAILURES])
    latest_runs = dict(
        SyncRun.objects.filter(
            outcome__in=[SyncRun.Outcome.SUCCESS, SyncRun.Outcome.FAILED, SyncRun.Outcome.ROLLED_BACK]
        )
        .values("data_type")
        .annotate(latest=Max("id"))
        .values_list("data_type", "latest")
    )
    for log in failures:
        log.short_error = shorten(log.error_message, 140)
        log.full_error = shorten(log.error_message, 2000)
        log.restore_candidate = points.get(log.data_type)
        # A refused suspicious sync can be reviewed and applied while it is still the type's latest word.
        log.reviewable = (
            log.error_code in ("suspicious_drop", "suspicious_change")
            and log.sync_run_id is not None
            and latest_runs.get(log.data_type) == log.sync_run_id
        )

    counts = failure_counts(now=now)
    runs = list(SyncRun.objects.defer("details").order_by("-started_at")[:SYNC_RUNS])
    for run in runs:
        run.short_error = shorten(run.error or run.skip_reason, 90)
        run.restorable = run.data_type in configs and restorable(run, configs[run.data_type])
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
