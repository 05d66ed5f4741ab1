"""What happened each day, per data type, read from the raw tables, and kept once a day has closed.

A day's figures, for each type, are: the time spent in each health state, failures by error code, failure
messages grouped with their numbers and ids replaced, the Retry-After waits Finale asked for, runs by outcome,
rows changed, retries queued / succeeded (by attempt) / exhausted / cancelled, and the outages that ended that
day. `compute_days` reads them for any run of days in a fixed number of queries, each bounded by an index on
its time column and grouped per day in SQL.

A local day is closed once it has ended and none of its runs is still running (or GRACE after its end, for a
run left "running" by a dead worker). The first window that covers a closed day stores its figures as an
AnalyticsDay row; later views read that row instead of the day's runs and logs. So a page reads its closed
days in one query and only the open tail (today) from the raw tables, whatever the table sizes. Stored days
are not recomputed: rows written afterwards with older timestamps, or removed by cleanup, do not change them.

Sources: the health history (HealthChange), the audit log's pause / resume / snooze entries and the admin's
"paused" / "enabled" / "snoozed_until" changes, sync runs, failure logs and the retry queue.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from django.db.models import Case, CharField, Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models import Window as Over
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, Lag, Lead, RowNumber
from django.urls import reverse
from django.utils import timezone

from finalesync import errors
from finalesync.datatypes import registry
from finalesync.models import AuditLog, DataTypeConfig, SyncRun
from finalesync.redact import redact
from retries.models import FailureLog, RetryItem, RetryStatus

from .models import AnalyticsDay, HealthChange, HealthStatus

# A day with a run still marked running (its worker may have died) is summarised anyway this long after it
# ends: longer than any sync may run (Q_TIMEOUT, 25 min).
GRACE = timedelta(hours=1)
# Stored days older than this are removed when new ones are stored (the longest window is 90 days).
KEEP_DAYS = 180
# A retry's attempts span a few hours at most (5 + 10 + 20 + 40 min, capped at 2 h each): runs are read from
# this long before a range so the attempt number of a retry that heals early in it is counted right.
ATTEMPT_LOOKBACK = timedelta(days=1)
# Distinct raw messages read per day (most frequent first) before grouping them; failures with rarer
# messages are still counted, as "other messages".
MESSAGES_PER_DAY = 200

HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN = (s.value for s in HealthStatus)
PAUSED = "paused"
# The availability states, in display order: "unknown" is never checked or not recorded yet.
STATES = (HEALTHY, DEGRADED, UNHEALTHY, PAUSED, UNKNOWN)

SUCCESS = SyncRun.Outcome.SUCCESS
FAILED_OUTCOMES = (SyncRun.Outcome.FAILED, SyncRun.Outcome.ROLLED_BACK)
FINISHED_OUTCOMES = (SUCCESS, *FAILED_OUTCOMES)
RUN_OUTCOMES = tuple(o.value for o in SyncRun.Outcome)

# How an outage ended: the trigger of the run that succeeded first after it.
SELF, RETRY, PERSON, OPEN = "self", "retry", "person", "open"
ENDINGS = (SELF, RETRY, PERSON, OPEN)
ENDING_LABELS = {SELF: "by itself", RETRY: "by a retry", PERSON: "by a person", OPEN: "still open"}
ATTEMPT_COLUMNS = ("1", "2", "3", "4+")
# Time-to-recovery buckets (seconds, upper bounds) of the page's chart and of the Prometheus histogram.
TTR_BUCKETS = (300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 3 * 86400)


def recoverable_codes() -> frozenset[str]:
    """Error codes of failures worth an automatic retry: every recoverable FinaleError, plus the codes the
    retry queue gives its own failures (a worker that died, a restore our database refused)."""
    codes, todo = set(), [errors.FinaleError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.recoverable:
            codes.add(cls.code)
    return frozenset(codes | {"lease_expired", "restore_failed"})


RECOVERABLE_CODES = recoverable_codes()


# --- the window ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """Whole local days from midnight of the first to `end` (now, or the end of the last day). `bounds` are the
    local midnights (days + 1 of them): the per-day buckets of every figure."""

    days: int
    data_type: str | None
    types: tuple[str, ...]
    end: datetime
    day_list: tuple[date, ...]
    bounds: tuple[datetime, ...]

    @property
    def start(self) -> datetime:
        return self.bounds[0]

    def day_index(self, moment: datetime) -> int:
        """The index of the day `moment` falls on (-1 before the window, days or more after it)."""
        return bisect_right(self.bounds, moment) - 1

    def day_case(self, field_name: str) -> Case:
        """SQL: the day index of `field_name` for rows already filtered to the window. A comparison on the
        column itself, not a per-row date function: cheap on both databases, and local midnights."""
        whens = [
            When(**{f"{field_name}__lt": self.bounds[i + 1]}, then=Value(i)) for i in range(self.days - 1)
        ]
        return Case(*whens, default=Value(self.days - 1), output_field=IntegerField())

    def in_window(self, field_name: str) -> Q:
        return Q(**{f"{field_name}__gte": self.start, f"{field_name}__lt": self.end})

    def closed_days(self) -> int:
        """How many days at the start of the window ended GRACE ago or more."""
        return sum(1 for b in self.bounds[1:] if b + GRACE <= self.end)

    def part(self, first: int, last: int, *, types: tuple[str, ...] | None = None) -> Window:
        """Days first..last-1 of this window (ending at `end` when that comes first)."""
        return Window(
            days=last - first,
            data_type=self.data_type,
            types=types or self.types,
            end=min(self.end, self.bounds[last]),
            day_list=self.day_list[first:last],
            bounds=self.bounds[first : last + 1],
        )


def make_window(*, days: int, data_type: str | None = None, now: datetime | None = None) -> Window:
    """The last `days` local days (today included) for `data_type` (None: every type)."""
    now = now or timezone.now()
    last = timezone.localtime(now).date()
    day_list = tuple(last - timedelta(days=days - 1 - i) for i in range(days))
    bounds = tuple(timezone.make_aware(datetime.combine(d, time.min)) for d in day_list)
    bounds += (timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min)),)
    types = (data_type,) if data_type else tuple(registry.NAMES)
    return Window(days=days, data_type=data_type, types=types, end=now, day_list=day_list, bounds=bounds)


def _latest_before(queryset, *, time_field: str, before: datetime, types) -> Subquery:
    """Ids of the newest row of `queryset` before `before`, one per type (an index lookup per type)."""
    newest = (
        queryset.filter(data_type=OuterRef("data_type"), **{f"{time_field}__lt": before})
        .order_by(f"-{time_field}", "-id")
        .values("id")[:1]
    )
    return Subquery(
        DataTypeConfig.objects.filter(data_type__in=types).annotate(newest=Subquery(newest)).values("newest")
    )


def _per_day(days: int):
    return [defaultdict(dict) for _ in range(days)]


# --- availability --------------------------------------------------------------------------------------------
PAUSE_ACTIONS = (AuditLog.Action.PAUSE, AuditLog.Action.RESUME, AuditLog.Action.SNOOZE)
_SETTINGS = Q(action=AuditLog.Action.CHANGE_SETTINGS)
# Which audit entries set each part of "paused": the pause flag, a snooze, and the enabled flag.
PAUSE_FACETS = {
    "paused": Q(action__in=[AuditLog.Action.PAUSE, AuditLog.Action.RESUME])
    | (_SETTINGS & Q(message__contains="paused to ")),
    "snoozed_until": Q(action__in=[AuditLog.Action.SNOOZE, AuditLog.Action.RESUME])
    | (_SETTINGS & Q(message__contains="snoozed_until to ")),
    "disabled": _SETTINGS & Q(message__contains="enabled to "),
}
_SNOOZE_HOURS = re.compile(r"\bfor ([0-9.]+(?:e[+-]?\d+)?) h\b")
_SETTING = {
    "paused": re.compile(r"\bpaused to (True|False)\b"),
    "enabled": re.compile(r"\benabled to (True|False)\b"),
    "snoozed_until": re.compile(
        r"\bsnoozed_until to (None|\d{4}-\d\d-\d\d[ T][0-9:.]+(?:[+-]\d\d:?\d\d|Z)?)"
    ),
}


def pause_changes(entry: AuditLog) -> list[tuple[str, object]]:
    """What a successful audit entry did to a type's pause state, as (facet, value) pairs: `paused` and
    `disabled` booleans, `snoozed_until` a time or None. Reads the actions' own entries (pause, resume,
    snooze "for N h") and the admin's "Changed paused to True, snoozed_until to ..." messages."""
    action = entry.action
    if action == AuditLog.Action.PAUSE:
        return [("paused", True)]
    if action == AuditLog.Action.RESUME:
        return [("paused", False), ("snoozed_until", None)]
    if action == AuditLog.Action.SNOOZE:
        match = _SNOOZE_HOURS.search(entry.target)
        return [("snoozed_until", entry.created_at + timedelta(hours=float(match.group(1))))] if match else []
    changes = []
    if match := _SETTING["paused"].search(entry.message):
        changes.append(("paused", match.group(1) == "True"))
    if match := _SETTING["enabled"].search(entry.message):
        changes.append(("disabled", match.group(1) == "False"))
    if match := _SETTING["snoozed_until"].search(entry.message):
        value = None if match.group(1) == "None" else datetime.fromisoformat(match.group(1))
        if value is not None and timezone.is_naive(value):
            value = timezone.make_aware(value)
        changes.append(("snoozed_until", value))
    return changes


def availability_days(window: Window) -> list[dict[str, dict[str, float]]]:
    """Per day, type → state → seconds. Two queries: the health history and the pause entries, each the
    window's rows plus the last one before it."""
    types = window.types
    changes = (
        HealthChange.objects.filter(data_type__in=types)
        .filter(
            Q(at__gte=window.start, at__lt=window.end)
            | Q(
                id__in=_latest_before(HealthChange.objects, time_field="at", before=window.start, types=types)
            )
        )
        .order_by("at", "id")
        .values_list("data_type", "at", "status")
    )
    pause_entries = AuditLog.objects.filter(data_type__in=types, outcome=AuditLog.Outcome.SUCCESS).filter(
        Q(action__in=PAUSE_ACTIONS) | (_SETTINGS & Q(message__contains=" to "))
    )
    wanted = Q(created_at__gte=window.start, created_at__lt=window.end)
    for facet in PAUSE_FACETS.values():
        wanted |= Q(
            id__in=_latest_before(
                pause_entries.filter(facet), time_field="created_at", before=window.start, types=types
            )
        )
    events: dict[str, list[tuple[float, str, object]]] = defaultdict(list)
    start = window.start.timestamp()
    for name, at, status in changes:
        events[name].append((max(at.timestamp(), start), "status", status))
    for entry in (
        pause_entries.filter(wanted)
        .order_by("created_at", "id")
        .only("data_type", "created_at", "action", "target", "message")
    ):
        for facet, value in pause_changes(entry):
            if facet == "snoozed_until" and value is not None:
                value = value.timestamp()
            events[entry.data_type].append((max(entry.created_at.timestamp(), start), facet, value))
    out = _per_day(window.days)
    bounds = [b.timestamp() for b in window.bounds]
    for name in types:
        for d, seconds in enumerate(_timeline(bounds, window.end.timestamp(), events[name])):
            out[d][name] = {s: v for s, v in seconds.items() if v}
    return out


def _timeline(bounds: list[float], end: float, events) -> list[dict[str, float]]:
    """Walk one type's status and pause changes (epoch seconds) from bounds[0] to `end`, adding each span to
    its state and day. Paused (or snoozed, or disabled) wins over the stored status."""
    state = {"status": UNKNOWN, "paused": False, "snoozed_until": None, "disabled": False}
    events = sorted(events, key=lambda e: e[0])
    start = bounds[0]
    points = {start, end}
    for at, facet, value in events:
        points.add(at)
        if facet == "snoozed_until" and value is not None:
            points.add(max(value, start))
    points = sorted(p for p in points if start <= p <= end)
    days = [dict.fromkeys(STATES, 0.0) for _ in bounds[:-1]]
    last_day, i = len(days) - 1, 0
    for a, b in zip(points, points[1:], strict=False):
        while i < len(events) and events[i][0] <= a:
            state[events[i][1]] = events[i][2]
            i += 1
        snoozed = state["snoozed_until"] is not None and state["snoozed_until"] > a
        current = PAUSED if state["paused"] or state["disabled"] or snoozed else state["status"]
        d = max(0, bisect_right(bounds, a) - 1)
        while a < b and d <= last_day:
            upto = min(b, bounds[d + 1])
            days[d][current] += upto - a
            a, d = upto, d + 1
    return days


# --- outages -------------------------------------------------------------------------------------------------
@dataclass
class Outage:
    """From the first failed sync of a type to its next successful run (a sync or a restore)."""

    data_type: str
    started_at: datetime
    first_run_id: int
    first_run_started: datetime
    error_code: str
    failures: int
    ended_at: datetime | None = None
    end_run_id: int | None = None
    ended_by: str = OPEN
    attempt: int | None = None
    # Where an open outage's length is measured to (the report's now); not stored.
    now: datetime | None = None

    @property
    def seconds(self) -> float:
        return ((self.ended_at or self.now or timezone.now()) - self.started_at).total_seconds()

    @property
    def recoverable(self) -> bool:
        return self.error_code in RECOVERABLE_CODES

    @property
    def ending(self) -> str:
        if self.ended_by == RETRY and self.attempt:
            return f"by a retry, attempt {self.attempt}"
        return ENDING_LABELS[self.ended_by]

    def _range(self, field_name: str) -> str:
        params = {"data_type": self.data_type, f"{field_name}__gte": self.first_run_started.isoformat()}
        if self.ended_at is not None:
            params[f"{field_name}__lte"] = self.ended_at.isoformat()
        return urlencode(params)

    @property
    def runs_url(self) -> str:
        """The admin's sync runs of this type from the first failed run to the one that ended it."""
        return f"{reverse('admin:finalesync_syncrun_changelist')}?{self._range('started_at')}"

    @property
    def failures_url(self) -> str:
        return f"{reverse('admin:retries_failurelog_changelist')}?{self._range('created_at')}"

    def as_row(self) -> list:
        """A compact JSON form, for AnalyticsDay."""
        return [
            self.data_type,
            self.started_at.timestamp(),
            self.first_run_id,
            self.first_run_started.timestamp(),
            self.error_code,
            self.failures,
            self.ended_at.timestamp() if self.ended_at else None,
            self.end_run_id,
            self.ended_by,
            self.attempt,
        ]

    @classmethod
    def from_row(cls, row: list) -> Outage:
        name, started, first_id, first_started, code, failures, ended, end_id, ended_by, attempt = row
        return cls(
            data_type=name,
            started_at=datetime.fromtimestamp(started, UTC),
            first_run_id=first_id,
            first_run_started=datetime.fromtimestamp(first_started, UTC),
            error_code=code,
            failures=failures,
            ended_at=datetime.fromtimestamp(ended, UTC) if ended is not None else None,
            end_run_id=end_id,
            ended_by=ended_by,
            attempt=attempt,
        )


def ended_by(trigger: str, triggered_by: str) -> str:
    """Who ended an outage, from the trigger of the run that succeeded: the schedule (by itself), the retry
    queue (its runs, and restores it ran, are "retry #<id>"), or a person (manual, command, restore)."""
    if trigger == SyncRun.Trigger.RETRY or triggered_by.startswith("retry #"):
        return RETRY
    if trigger == SyncRun.Trigger.SCHEDULE:
        return SELF
    return PERSON


def _failed_runs():
    # A failed restore is our own database refusing, not Finale failing: it neither starts nor extends one.
    return SyncRun.objects.filter(outcome__in=FAILED_OUTCOMES).exclude(trigger=SyncRun.Trigger.RESTORE)


def outages_of(
    window: Window, *, lookback: timedelta = ATTEMPT_LOOKBACK
) -> tuple[list[Outage], list[tuple[str, datetime, int]]]:
    """The outages that overlap `window` (ended in it or still open at its end), and the successful retry
    runs in it as (type, finished, attempt).

    Two queries. The first finds, per type, an outage already open when the read starts (the first failure
    after the last success before it). The second numbers the runs since then with window functions and
    returns only where something changes: the first and last run of each type, each switch between failing
    and succeeding, and each successful retry with its attempt number (its place among the runs of the same
    retry item; `lookback` is how long before the window runs are read for that number)."""
    types, read_from = window.types, window.start - lookback
    last_success = (
        SyncRun.objects.filter(data_type=OuterRef("data_type"), outcome=SUCCESS, started_at__lt=read_from)
        .order_by("-started_at", "-id")
        .values("started_at")[:1]
    )
    first_failure = _failed_runs().filter(
        data_type=OuterRef("data_type"),
        started_at__lt=read_from,
        started_at__gt=Coalesce(OuterRef("last_success"), Value(datetime(1970, 1, 1, tzinfo=UTC))),
    )
    ordered = first_failure.order_by("started_at", "id")
    count = first_failure.order_by().values("data_type").annotate(n=Count("id")).values("n")
    pre = {
        row["data_type"]: row
        for row in DataTypeConfig.objects.filter(data_type__in=types)
        .annotate(last_success=Subquery(last_success))
        .annotate(
            ff_id=Subquery(ordered.values("id")[:1]),
            ff_started=Subquery(ordered.values("started_at")[:1]),
            ff_finished=Subquery(ordered.values("finished_at")[:1]),
            ff_code=Subquery(ordered.values("error_code")[:1]),
            ff_count=Subquery(count),
        )
        .values("data_type", "ff_id", "ff_started", "ff_finished", "ff_code", "ff_count")
    }

    order = [F("started_at").asc(), F("id").asc()]
    by_type = [F("data_type")]
    rows = (
        SyncRun.objects.filter(data_type__in=types, started_at__gte=read_from, started_at__lt=window.end)
        .filter(Q(outcome=SUCCESS) | (Q(outcome__in=FAILED_OUTCOMES) & ~Q(trigger=SyncRun.Trigger.RESTORE)))
        .annotate(
            cls=Case(When(outcome=SUCCESS, then=Value("s")), default=Value("f"), output_field=CharField())
        )
        .annotate(
            prev=Coalesce(Over(Lag("cls"), partition_by=by_type, order_by=order), Value("")),
            following=Over(Lead("id"), partition_by=by_type, order_by=order),
            seq=Over(RowNumber(), partition_by=by_type, order_by=order),
            attempt=Over(RowNumber(), partition_by=[F("data_type"), F("triggered_by")], order_by=order),
        )
        .filter(
            ~Q(prev=F("cls")) | Q(following__isnull=True) | Q(trigger=SyncRun.Trigger.RETRY, outcome=SUCCESS)
        )
        .order_by()
        .values_list(
            "data_type",
            "seq",
            "cls",
            "following",
            "id",
            "started_at",
            "finished_at",
            "trigger",
            "triggered_by",
            "error_code",
            "attempt",
        )
    )
    per_type = defaultdict(list)
    for row in rows:
        per_type[row[0]].append(row)

    outages, successes = [], []
    for name in types:
        current, first_seq, before = None, 0, 0
        head = pre.get(name)
        if head and head["ff_id"]:
            before = head["ff_count"] or 0
            current = Outage(
                data_type=name,
                started_at=head["ff_finished"] or head["ff_started"],
                first_run_id=head["ff_id"],
                first_run_started=head["ff_started"],
                error_code=head["ff_code"] or "",
                failures=before,
            )
            first_seq = 1
        for _, seq, cls, following, pk, started, finished, trigger, by, code, attempt in sorted(
            per_type[name], key=lambda r: r[1]
        ):
            at = finished or started
            if cls == "f":
                if current is None:
                    current = Outage(
                        data_type=name,
                        started_at=at,
                        first_run_id=pk,
                        first_run_started=started,
                        error_code=code or "",
                        failures=1,
                    )
                    first_seq, before = seq, 0
                if following is None:
                    current.failures = before + seq - first_seq + 1
                continue
            if trigger == SyncRun.Trigger.RETRY and window.start <= at < window.end:
                successes.append((name, at, attempt))
            if current is not None:
                current.failures = before + seq - first_seq
                current.ended_at, current.end_run_id = at, pk
                current.ended_by = ended_by(trigger, by)
                current.attempt = attempt if current.ended_by == RETRY else None
                outages.append(current)
                current = None
        if current is not None:
            outages.append(current)
    outages = [
        o for o in outages if o.started_at < window.end and (o.ended_at is None or o.ended_at >= window.start)
    ]
    return outages, successes


# --- retries -------------------------------------------------------------------------------------------------
def attempt_column(attempt: int) -> str:
    return str(attempt) if attempt < len(ATTEMPT_COLUMNS) else ATTEMPT_COLUMNS[-1]


def retry_days(window: Window, successes) -> list[dict]:
    """Per day, type → {queued, exhausted, cancelled, succeeded: {attempt: n}}. Two queries: retries queued,
    and retries closed as exhausted (failed on a recoverable error: the attempts ran out) or cancelled.
    Successes are the retry runs that succeeded (from `outages_of`)."""
    out = _per_day(window.days)
    items = RetryItem.objects.filter(data_type__in=window.types)
    for row in (
        items.filter(window.in_window("created_at"))
        .values("data_type", day=window.day_case("created_at"))
        .annotate(n=Count("id"))
        .order_by()
    ):
        out[row["day"]][row["data_type"]]["queued"] = row["n"]
    for row in (
        items.filter(window.in_window("completed_at"), status__in=[RetryStatus.FAILED, RetryStatus.CANCELLED])
        .values("data_type", "status", "error_code", day=window.day_case("completed_at"))
        .annotate(n=Count("id"))
        .order_by()
    ):
        if row["status"] == RetryStatus.CANCELLED:
            key = "cancelled"
        elif row["error_code"] in RECOVERABLE_CODES:
            key = "exhausted"
        else:
            continue
        figures = out[row["day"]][row["data_type"]]
        figures[key] = figures.get(key, 0) + row["n"]
    for name, at, attempt in successes:
        figures = out[window.day_index(at)][name].setdefault("succeeded", {})
        column = attempt_column(attempt)
        figures[column] = figures.get(column, 0) + 1
    return out


# --- failures ------------------------------------------------------------------------------------------------
_VARIABLE = re.compile(
    r"(?P<http>\bHTTP[ /]?[1-5]\d\d\b)"
    r"|(?P<id>\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{12,}\b)"
    r"|(?P<n>\d+(?:[.,]\d+)*)",
    re.IGNORECASE,
)


def normalise_message(message: str) -> str:
    """A failure message with what varies between occurrences replaced, so alike ones group: numbers become
    N, long hex ids and UUIDs become ID. HTTP statuses stay (a 502 and a 401 are different causes).
    Redacted again, on one line."""
    text = " ".join(redact(message or "").split())

    def replace(match):
        if match.group("http"):
            return match.group(0)
        return "ID" if match.group("id") else "N"

    return _VARIABLE.sub(replace, text)


def failure_days(window: Window) -> list[dict]:
    """Per day: `failures` type → code → n; `messages` type → [[code, grouped message, n, example]];
    `messages_other` type → failures whose message was not among the day's most frequent; `retry_after`
    type → wait (seconds, as text) → n. Three queries."""
    out = [{"failures": {}, "messages": {}, "messages_other": {}, "retry_after": {}} for _ in window.day_list]
    logs = FailureLog.objects.filter(window.in_window("created_at"), data_type__in=window.types)
    for row in (
        logs.values("data_type", "error_code", day=window.day_case("created_at"))
        .annotate(n=Count("id"))
        .order_by()
    ):
        per_type = out[row["day"]]["failures"].setdefault(row["data_type"], {})
        code = row["error_code"] or "error"
        per_type[code] = per_type.get(code, 0) + row["n"]

    groups: dict[tuple, list] = {}
    read = defaultdict(int)
    for row in (
        logs.values("data_type", "error_code", "error_message", day=window.day_case("created_at"))
        .annotate(n=Count("id"))
        .order_by("-n", "data_type", "error_code", "error_message")[: MESSAGES_PER_DAY * window.days]
    ):
        code = row["error_code"] or "error"
        key = (row["day"], row["data_type"], code, normalise_message(row["error_message"]))
        group = groups.setdefault(key, [code, key[3], 0, "", 0])
        group[2] += row["n"]
        if row["n"] > group[4]:
            group[3], group[4] = " ".join(redact(row["error_message"]).split())[:300], row["n"]
        read[(row["day"], row["data_type"])] += row["n"]
    for (day, name, _, _), group in sorted(groups.items(), key=lambda kv: (-kv[1][2], kv[0])):
        out[day]["messages"].setdefault(name, []).append(group[:4])
    for day, figures in enumerate(out):
        for name, per_code in figures["failures"].items():
            other = sum(per_code.values()) - read[(day, name)]
            if other:
                figures["messages_other"][name] = other

    for row in (
        logs.filter(error_details__has_key="retry_after")
        .values("data_type", day=window.day_case("created_at"), wait=KT("error_details__retry_after"))
        .annotate(n=Count("id"))
        .order_by()
    ):
        try:
            wait = str(float(row["wait"]))
        except (TypeError, ValueError):
            continue  # not a number of seconds
        per_type = out[row["day"]]["retry_after"].setdefault(row["data_type"], {})
        per_type[wait] = per_type.get(wait, 0) + row["n"]
    return out


# --- runs ----------------------------------------------------------------------------------------------------
def run_days(window: Window) -> list[dict]:
    """Per day: `runs` type → outcome → n, `rows_changed` type → rows created + updated + deleted. One query."""
    out = [{"runs": {}, "rows_changed": {}} for _ in window.day_list]
    for row in (
        SyncRun.objects.filter(window.in_window("started_at"), data_type__in=window.types)
        .values("data_type", "outcome", day=window.day_case("started_at"))
        .annotate(n=Count("id"), changed=Sum(F("created") + F("updated") + F("deleted")))
        .order_by()
    ):
        figures = out[row["day"]]
        figures["runs"].setdefault(row["data_type"], {})[row["outcome"]] = row["n"]
        if row["changed"]:
            changed = figures["rows_changed"]
            changed[row["data_type"]] = changed.get(row["data_type"], 0) + row["changed"]
    return out


# --- a run of days -------------------------------------------------------------------------------------------
def compute_days(window: Window, *, with_open: bool) -> tuple[list[dict], list[Outage]]:
    """The figures of each day of `window` from the raw tables (ten queries), each day a JSON-ready dict
    (as AnalyticsDay stores it), with the outages that ended on it under `outages`. With `with_open`, the
    outages still open at the window's end are returned too; without, they are left to a later window."""
    days = [{} for _ in window.day_list]
    for d, figures in enumerate(availability_days(window)):
        days[d]["availability"] = dict(figures)
    outages, successes = outages_of(window)
    for d, figures in enumerate(retry_days(window, successes)):
        days[d]["retries"] = dict(figures)
    for d, figures in enumerate(failure_days(window)):
        days[d].update(figures)
    for d, figures in enumerate(run_days(window)):
        days[d].update(figures)
    for figures in days:
        figures["outages"], figures["recovery"] = [], {}
    still_open = []
    for outage in outages:
        if outage.ended_at is None:
            still_open.append(outage)
            continue
        d = window.day_index(outage.ended_at)
        if 0 <= d < window.days and outage.ended_at < window.end:
            days[d]["outages"].append(outage.as_row())
            # Per type: outages per time-to-recovery bucket (the last one above every bound), then the sum.
            buckets = days[d]["recovery"].setdefault(outage.data_type, [0] * (len(TTR_BUCKETS) + 2))
            buckets[bisect_left(TTR_BUCKETS, outage.seconds)] += 1
            buckets[-1] += outage.seconds
    # Through JSON, so what is computed now reads exactly as what was stored (string keys, lists).
    days = json.loads(json.dumps(days))
    return days, still_open if with_open else []


COLUMNS = ("figures", "outages", "recovery")


def closed_figures(window: Window, *, columns: tuple[str, ...] = COLUMNS) -> list[dict]:
    """The figures of the window's closed days (for every type), from AnalyticsDay; the ones not stored yet
    are computed from the raw tables, in one pass over the span that holds them, and stored.

    A day is closed GRACE after it ends, or as soon as it has ended and none of its runs is still running
    (one query, asked only until the day is stored). `columns` picks what is read of the stored days:
    `figures` (merged into each day's dict), `outages` and `recovery` (under those keys)."""
    closed = window.closed_days()
    ended = sum(1 for b in window.bounds[1:] if b <= window.end)
    if ended == 0:
        return []
    zone = timezone.get_current_timezone_name()
    stored = {}
    for row in AnalyticsDay.objects.filter(
        time_zone=zone, day__gte=window.day_list[0], day__lte=window.day_list[ended - 1]
    ).values("day", *columns):
        day = row.pop("day")
        stored[day] = {**row.pop("figures", {}), **row}
    if closed < ended:
        day = window.day_list[closed]
        in_flight = SyncRun.objects.filter(
            outcome=SyncRun.Outcome.RUNNING,
            started_at__gte=window.bounds[closed],
            started_at__lt=window.bounds[closed + 1],
        )
        if day in stored or not in_flight.exists():
            closed += 1
    days = window.day_list[:closed]
    missing = [i for i, day in enumerate(days) if day not in stored]
    if missing:
        first, last = missing[0], missing[-1] + 1
        computed, _ = compute_days(window.part(first, last, types=tuple(registry.NAMES)), with_open=False)
        AnalyticsDay.objects.bulk_create(
            [
                AnalyticsDay(
                    day=days[i],
                    time_zone=zone,
                    figures={
                        k: v for k, v in computed[i - first].items() if k not in ("outages", "recovery")
                    },
                    outages=computed[i - first]["outages"],
                    recovery=computed[i - first]["recovery"],
                )
                for i in missing
            ],
            ignore_conflicts=True,  # another view stored them first: the same figures
        )
        AnalyticsDay.objects.filter(day__lt=days[0] - timedelta(days=KEEP_DAYS)).delete()
        stored.update({days[i]: computed[i - first] for i in missing})
    return [stored[day] for day in days]


def window_figures(window: Window) -> tuple[list[dict], list[Outage]]:
    """Every day of `window`: the closed ones stored (or computed once and stored), the rest read live; plus
    the outages still open at the window's end."""
    closed = closed_figures(window)
    if len(closed) == window.days:
        return closed, []
    tail, still_open = compute_days(window.part(len(closed), window.days), with_open=True)
    return closed + tail, still_open


def recovery_buckets(window: Window) -> dict[str, list]:
    """Per type, the outages that ended in `window` per time-to-recovery bucket, then their summed seconds
    (for the Prometheus histogram): the stored days' small per-day sums (one query) and the open tail's
    outages read live (two queries), without reading every outage of the window."""
    closed = closed_figures(window, columns=("recovery",))
    total = {name: [0] * (len(TTR_BUCKETS) + 2) for name in window.types}
    for figures in closed:
        for name, buckets in figures.get("recovery", {}).items():
            if name in total:
                total[name] = [a + b for a, b in zip(total[name], buckets, strict=True)]
    if len(closed) < window.days:
        # No look-back: the attempt numbers it is for are not part of the histogram.
        tail, _ = outages_of(window.part(len(closed), window.days), lookback=timedelta(0))
        for outage in tail:
            if outage.ended_at is not None and outage.data_type in total:
                total[outage.data_type][bisect_left(TTR_BUCKETS, outage.seconds)] += 1
                total[outage.data_type][-1] += outage.seconds
    return total
