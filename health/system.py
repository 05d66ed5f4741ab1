"""The health of the whole sync system (the seed's `get_sync_system_health`), for synchealth, /health/,
/metrics and the dashboard. A handful of queries whatever the table sizes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from finalesync.datatypes import registry
from finalesync.models import DataTypeConfig, ScheduleState
from finalesync.redact import redact
from finalesync.sync import ensure_configs
from retries.models import OPEN_STATUSES, FailureLog, RetryItem, RetryStatus

from .grading import assess
from .models import ConnectionHealth, HealthStatus
from .state import Condition, describe

CYCLE_FUNC = "finalesync.tasks.sync_cycle"
EXIT_CODES = {HealthStatus.HEALTHY: 0, HealthStatus.DEGRADED: 1, HealthStatus.UNHEALTHY: 2}
# The columns of sync_connection_health, in the seed's order: the JSON rows carry them unchanged.
HEALTH_COLUMNS = (
    "data_type",
    "status",
    "last_check_time",
    "item_count",
    "error_message",
    "consecutive_failures",
    "last_success_time",
    "last_failure_time",
    "updated_at",
)
# What an anonymous caller of /health/ sees of each type: statuses, no texts, no business figures.
PUBLIC_TYPE_KEYS = (
    "data_type",
    "status",
    "effective_status",
    "grade",
    "stale",
    "state",
    "paused",
    "condition",
    "last_check_time",
    "last_success_time",
)


@dataclass
class TypeHealth:
    """One data type's health row, graded, with its schedule state."""

    data_type: str
    label: str
    status: str
    effective_status: str
    grade: str
    grade_reason: str
    stale: bool
    very_stale: bool
    # active, paused, snoozed or disabled: only active types count toward the overall status.
    state: str
    needs_attention: bool
    attention_reason: str
    interval_minutes: int
    item_count: int = 0
    error_message: str | None = None
    consecutive_failures: int = 0
    last_check_time: datetime | None = None
    last_success_time: datetime | None = None
    last_failure_time: datetime | None = None
    updated_at: datetime | None = None
    snoozed_until: datetime | None = None
    next_run_at: datetime | None = None
    seconds_since_success: float | None = None
    # The one state (health/state.py): what the card, synchealth, the alerts and the admin say.
    condition: str = ""
    summary: str = ""
    next_step: str = ""
    tone: str = "muted"

    @property
    def paused(self) -> bool:
        return self.state != "active"

    @property
    def condition_label(self) -> str:
        return Condition(self.condition).label if self.condition else ""

    @property
    def counts(self) -> bool:
        return not self.paused

    def as_json(self, *, public: bool = False) -> dict:
        data = {name: getattr(self, name) for name in HEALTH_COLUMNS}
        # Stored redacted already; redacted again on the way out, in case a secret was registered since.
        data["error_message"] = redact(self.error_message) if self.error_message else self.error_message
        data.update(
            grade=self.grade,
            stale=self.stale,
            effective_status=self.effective_status,
            grade_reason=self.grade_reason,
            state=self.state,
            paused=self.paused,
            needs_attention=self.needs_attention,
            interval_minutes=self.interval_minutes,
            next_run_at=self.next_run_at,
            seconds_since_success=self.seconds_since_success,
            condition=self.condition,
            summary=self.summary,
            next_step=self.next_step,
        )
        if public:
            data = {k: data[k] for k in PUBLIC_TYPE_KEYS}
        return {k: _jsonable(v) for k, v in data.items()}


@dataclass
class SystemHealth:
    status: str
    checked_at: datetime
    data_types: list[TypeHealth]
    retry_queue: dict[str, int]
    failures_24h: int
    oldest_pending_retry_at: datetime | None
    last_cycle_at: datetime | None
    next_cycle_at: datetime | None
    cycle_minutes: int | None
    notes: list[str] = field(default_factory=list)
    # What the health was read from, for pages that show more of it (the dashboard) without reading it again.
    configs: dict = field(default_factory=dict, repr=False)
    open_retries: list = field(default_factory=list, repr=False)

    @property
    def oldest_pending_retry_age_seconds(self) -> float | None:
        if self.oldest_pending_retry_at is None:
            return None
        return max(0.0, (self.checked_at - self.oldest_pending_retry_at).total_seconds())

    @property
    def http_status(self) -> int:
        """503 when an enabled, unpaused type is unhealthy (uptime monitors page on it), else 200."""
        return 503 if self.status == HealthStatus.UNHEALTHY else 200

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 1)

    def by_type(self) -> dict[str, TypeHealth]:
        return {t.data_type: t for t in self.data_types}

    def as_json(self, *, public: bool = False) -> dict:
        return {
            "status": self.status,
            "checked_at": _jsonable(self.checked_at),
            "data_types": [t.as_json(public=public) for t in self.data_types],
            "retry_queue": self.retry_queue,
            "failures_24h": self.failures_24h,
            "oldest_pending_retry_age_seconds": self.oldest_pending_retry_age_seconds,
            "last_cycle_at": _jsonable(self.last_cycle_at),
            "next_cycle_at": _jsonable(self.next_cycle_at),
            "notes": self.notes,
        }


def overall_status(types: list[TypeHealth]) -> str:
    """Unhealthy when an active type is; degraded when an active type is degraded, stale or never checked;
    else healthy. Paused, snoozed and disabled types do not count."""
    active = [t for t in types if t.counts]
    statuses = {t.effective_status for t in active}
    if HealthStatus.UNHEALTHY in statuses:
        return HealthStatus.UNHEALTHY
    if statuses & {HealthStatus.DEGRADED, HealthStatus.UNKNOWN} or any(t.stale for t in active):
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY


def next_run(
    config: DataTypeConfig, *, now: datetime, next_cycle: datetime | None, cycle_minutes: int | None
) -> datetime | None:
    """When the schedule next syncs this type: the first cycle tick at or after it is due. None when the
    schedule leaves it alone (paused, snoozed, disabled, waiting for a person)."""
    state, _ = config.schedule(now)
    if state in (ScheduleState.DISABLED, ScheduleState.PAUSED, ScheduleState.SNOOZED, ScheduleState.WAITING):
        return None
    due = config.next_run_at() or now
    if state == ScheduleState.HELD:
        due = max(due, config.held_until)
    if next_cycle is None or not cycle_minutes:
        return max(due, now)
    period = timedelta(minutes=cycle_minutes)
    tick = next_cycle
    if due > tick:
        tick += period * math.ceil((due - tick) / period)
    return tick


def get_sync_system_health(*, now: datetime | None = None) -> SystemHealth:
    """The overall status, each type's graded health row, the retry queue counts, failures in 24 h, the age
    of the oldest pending retry and the time of the last and next sync cycle. Raises only database errors."""
    now = now or timezone.now()
    configs = ensure_configs()
    rows = {h.data_type: h for h in ConnectionHealth.objects.all()}
    queue = RetryItem.objects.aggregate(
        pending=Count("id", filter=Q(status=RetryStatus.PENDING)),
        processing=Count("id", filter=Q(status=RetryStatus.PROCESSING)),
        # A failed retry whose type has synced since is history, not a problem to count.
        failed=Count("id", filter=Q(status=RetryStatus.FAILED, superseded_at__isnull=True)),
        oldest_pending=Min("created_at", filter=Q(status=RetryStatus.PENDING)),
    )
    failures_24h = FailureLog.objects.filter(created_at__gte=now - timedelta(hours=24)).count()
    open_items = list(RetryItem.objects.filter(status__in=OPEN_STATUSES).order_by("-priority", "created_at"))
    open_retries = {item.data_type: item for item in open_items if item.operation == RetryItem.Operation.SYNC}
    last_cycle_at, next_cycle_at, cycle_minutes = _cycle_times()

    types = []
    for name in registry.NAMES:
        config = configs[name]
        row = rows.get(name)
        status = row.status if row else HealthStatus.UNKNOWN
        graded = assess(
            status=status,
            consecutive_failures=row.consecutive_failures if row else 0,
            last_success_time=row.last_success_time if row else None,
            last_failure_time=row.last_failure_time if row else None,
            interval=config.interval,
            now=now,
        )
        health = TypeHealth(
            data_type=name,
            label=registry.get(name).label,
            status=status,
            effective_status=graded.status,
            grade=graded.grade,
            grade_reason=graded.reason,
            stale=graded.stale,
            very_stale=graded.very_stale,
            state=config.activity(now),
            needs_attention=config.needs_attention,
            attention_reason=config.attention_reason,
            interval_minutes=config.interval_minutes,
            item_count=row.item_count if row else 0,
            error_message=row.error_message if row else None,
            consecutive_failures=row.consecutive_failures if row else 0,
            last_check_time=row.last_check_time if row and status != HealthStatus.UNKNOWN else None,
            last_success_time=row.last_success_time if row else None,
            last_failure_time=row.last_failure_time if row else None,
            updated_at=row.updated_at if row else None,
            snoozed_until=config.snoozed_until if config.is_snoozed(now) else None,
            next_run_at=next_run(config, now=now, next_cycle=next_cycle_at, cycle_minutes=cycle_minutes),
            seconds_since_success=(
                max(0.0, (now - row.last_success_time).total_seconds())
                if row and row.last_success_time
                else None
            ),
        )
        one = describe(
            config=config,
            status=status,
            effective_status=graded.status,
            stale=graded.stale,
            very_stale=graded.very_stale,
            last_success_time=health.last_success_time,
            error_message=health.error_message,
            item_count=health.item_count,
            retry=open_retries.get(name),
            next_run_at=health.next_run_at,
            now=now,
        )
        health.condition, health.summary, health.next_step, health.tone = (
            one.condition,
            one.phrase,
            one.next_step,
            one.tone,
        )
        types.append(health)
    notes = []
    if cycle_minutes is None:
        notes.append("No sync cycle schedule is installed: run `python manage.py setupschedules`.")
    elif next_cycle_at is not None and next_cycle_at < now - timedelta(minutes=cycle_minutes + 5):
        notes.append("The sync cycle is overdue: is the scheduler (`python manage.py qcluster`) running?")
    return SystemHealth(
        status=overall_status(types),
        checked_at=now,
        data_types=types,
        retry_queue={k: queue[k] for k in ("pending", "processing", "failed")},
        failures_24h=failures_24h,
        oldest_pending_retry_at=queue["oldest_pending"],
        last_cycle_at=last_cycle_at,
        next_cycle_at=next_cycle_at,
        cycle_minutes=cycle_minutes,
        notes=notes,
        configs=configs,
        open_retries=open_items,
    )


def _cycle_times() -> tuple[datetime | None, datetime | None, int | None]:
    """(last cycle run, next cycle run, minutes between cycles) from django-q2's schedule and task tables."""
    from django_q.models import Schedule, Task

    schedule = Schedule.objects.filter(func=CYCLE_FUNC).values("next_run", "minutes").first()
    last = Task.objects.filter(func=CYCLE_FUNC).order_by("-started").values_list("started", flat=True).first()
    if schedule is None:
        return last, None, None
    return last, schedule["next_run"], schedule["minutes"]


def _jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return value
