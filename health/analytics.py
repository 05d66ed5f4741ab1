"""Retry analytics: availability, outages and recovery, retries, causes and sync volume, for a window of 7 to
90 days and one data type or all of them; the same numbers as JSON and CSV tables, and the time to recovery
as a Prometheus histogram.

The report adds up the figures of each day of the window (health/daily.py: the closed days stored once, the
open tail read live), so it costs the same number of queries at any table size. The one figure that cannot be
added up per day, the run durations' percentiles, is picked in SQL: a count per type, then one row at the
percentile's rank per type through an index on (type, duration). Percentiles are nearest-rank: the smallest
value with at least p % of the values at or below it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property

from django.conf import settings
from django.db.models import Min, Subquery
from django.utils import timezone
from prometheus_client.core import HistogramMetricFamily

from finalesync.datatypes import registry
from finalesync.models import SyncRun

from . import daily
from .daily import (
    ATTEMPT_COLUMNS,
    ENDINGS,
    FINISHED_OUTCOMES,
    OPEN,
    RECOVERABLE_CODES,
    RETRY,
    RUN_OUTCOMES,
    SELF,
    STATES,
    TTR_BUCKETS,
    Outage,
    Window,
)
from .models import HealthChange

WINDOWS = (7, 14, 30, 90)
DEFAULT_DAYS = 30
TOP_MESSAGES = 15
OUTAGES_SHOWN = 100


def nearest_rank(sorted_values: list, p: int):
    """The p-th percentile (p in 1..100) of ascending `sorted_values` by nearest rank; None when empty.
    rank = ceil(p × n / 100), in integers, as `_durations` computes it for SQL."""
    if not sorted_values:
        return None
    return sorted_values[(p * len(sorted_values) + 99) // 100 - 1]


def weighted_rank(pairs: list[tuple[float, int]], p: int):
    """nearest_rank over (value, count) pairs, as if each value appeared `count` times."""
    pairs = sorted(pairs)
    n = sum(c for _, c in pairs)
    if not n:
        return None
    rank, seen = (p * n + 99) // 100, 0
    for value, count in pairs:
        seen += count
        if seen >= rank:
            return value
    return pairs[-1][0]


def _round(value, digits: int = 3):
    return None if value is None else round(value, digits)


# --- sections ------------------------------------------------------------------------------------------------
@dataclass
class Availability:
    data_type: str
    seconds: dict[str, float]
    days: list[dict[str, float]]
    # When the health history of this type begins (None: it has none yet).
    recorded_since: datetime | None

    @property
    def shares(self) -> dict[str, float]:
        total = sum(self.seconds.values()) or 1.0
        return {s: self.seconds[s] / total for s in STATES}

    def day_shares(self) -> list[dict[str, float]]:
        return [{s: d.get(s, 0.0) / (sum(d.values()) or 1.0) for s in STATES} for d in self.days]


@dataclass
class Recovery:
    """Time to recovery of the outages of one type (or all, `data_type` None) that ended in the window."""

    data_type: str | None
    outages: int = 0
    recovered: int = 0
    open: int = 0
    median_seconds: float | None = None
    p95_seconds: float | None = None
    ended_by: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENDINGS, 0))
    # Outages that began with a recoverable failure and ended in the window, and how many of those ended
    # without a person (by the schedule or a retry).
    recoverable_recovered: int = 0
    healed_without_person: int = 0

    @property
    def healed_share(self) -> float | None:
        return self.healed_without_person / self.recoverable_recovered if self.recoverable_recovered else None

    def as_json(self) -> dict:
        return {
            "data_type": self.data_type,
            "outages": self.outages,
            "recovered": self.recovered,
            "open": self.open,
            "median_seconds": _round(self.median_seconds),
            "p95_seconds": _round(self.p95_seconds),
            "ended_by": self.ended_by,
            "recoverable_recovered": self.recoverable_recovered,
            "healed_without_person": self.healed_without_person,
            "healed_without_person_share": _round(self.healed_share, 4),
        }


def recovery_of(rows: list[list], *, types: tuple[str, ...]) -> list[Recovery]:
    """A Recovery per type, then (with several types) one for all of them, in one pass over the outages'
    compact rows (Outage.as_row: no object per outage, there may be thousands)."""
    out = {name: Recovery(data_type=name) for name in types}
    durations = {name: [] for name in types}
    for name, started, _, _, code, _, ended, _, how, _ in rows:
        result = out.get(name)
        if result is None:
            continue
        result.outages += 1
        if ended is None:
            result.open += 1
            result.ended_by[OPEN] += 1
            continue
        result.recovered += 1
        result.ended_by[how] += 1
        durations[name].append(ended - started)
        if code in RECOVERABLE_CODES:
            result.recoverable_recovered += 1
            result.healed_without_person += how in (SELF, RETRY)
    results = list(out.values())
    if len(types) > 1:
        total = Recovery(data_type=None)
        for r in results:
            for attr in ("outages", "recovered", "open", "recoverable_recovered", "healed_without_person"):
                setattr(total, attr, getattr(total, attr) + getattr(r, attr))
            for ending, n in r.ended_by.items():
                total.ended_by[ending] += n
        results.append(total)
        durations[None] = [d for values in durations.values() for d in values]
    for r in results:
        values = sorted(durations[r.data_type])
        r.median_seconds = nearest_rank(values, 50)
        r.p95_seconds = nearest_rank(values, 95)
    return results


@dataclass
class RetryDay:
    day: date
    scheduled: int = 0
    succeeded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ATTEMPT_COLUMNS, 0))
    exhausted: int = 0
    cancelled: int = 0

    def as_json(self) -> dict:
        return {
            "day": self.day.isoformat(),
            "scheduled": self.scheduled,
            "succeeded": self.succeeded,
            "exhausted": self.exhausted,
            "cancelled": self.cancelled,
        }


@dataclass
class MessageGroup:
    message: str
    error_code: str
    count: int = 0
    types: Counter = field(default_factory=Counter)
    example: str = ""
    example_count: int = 0

    def as_json(self) -> dict:
        return {
            "message": self.message,
            "error_code": self.error_code,
            "count": self.count,
            "types": dict(sorted(self.types.items())),
            "example": self.example,
        }


@dataclass
class RetryAfter:
    """The waits Finale asked for with Retry-After (seconds), per type."""

    data_type: str
    requests: int = 0
    median_seconds: float | None = None
    p95_seconds: float | None = None
    max_seconds: float | None = None

    def as_json(self) -> dict:
        return {
            "data_type": self.data_type,
            "requests": self.requests,
            "median_seconds": self.median_seconds,
            "p95_seconds": self.p95_seconds,
            "max_seconds": self.max_seconds,
        }


@dataclass
class Causes:
    # (data_type, error_code) → failures per day
    by_code: dict[tuple[str, str], list[int]]
    messages: list[MessageGroup]
    other_messages: int
    retry_after: list[RetryAfter]

    @property
    def total(self) -> int:
        return sum(sum(v) for v in self.by_code.values())

    def codes(self) -> list[str]:
        """Error codes, most frequent first."""
        totals = Counter()
        for (_, code), per_day in self.by_code.items():
            totals[code] += sum(per_day)
        return [code for code, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]


@dataclass
class Durations:
    data_type: str
    runs: int = 0
    median_ms: int | None = None
    p95_ms: int | None = None

    def as_json(self) -> dict:
        return {
            "data_type": self.data_type,
            "runs": self.runs,
            "median_ms": self.median_ms,
            "p95_ms": self.p95_ms,
        }


@dataclass
class Volume:
    # (data_type, outcome) → runs per day; data_type → rows created + updated + deleted per day
    runs: dict[tuple[str, str], list[int]]
    rows_changed: dict[str, list[int]]
    durations: list[Durations]

    def runs_per_day(self, days: int) -> list[dict[str, int]]:
        out = [dict.fromkeys(RUN_OUTCOMES, 0) for _ in range(days)]
        for (_, outcome), per_day in self.runs.items():
            for i, n in enumerate(per_day):
                out[i][outcome] += n
        return out


def durations_of(window: Window, counts: dict[str, int]) -> list[Durations]:
    """Median and 95th-percentile duration of the finished runs (success, failed, rolled back) per type, given
    how many there are (`counts`, from the runs per day). One query of a subquery per figure, each a walk of
    the index on (type, duration, started, outcome) to the run at that rank, without a sort or the table."""
    runs = SyncRun.objects.filter(window.in_window("started_at"), outcome__in=FINISHED_OUTCOMES)
    result, picks = {}, {}
    for i, name in enumerate(window.types):
        n = counts.get(name, 0)
        result[name] = Durations(data_type=name, runs=n)
        # Equal durations are interchangeable, so no tie-breaker: the index order is the sort order. A rank
        # in the upper half is counted from the top, so the walk is at most half the type's runs.
        of_type = runs.filter(data_type=name).values("duration_ms")
        for label, p in (("median", 50), ("p95", 95)):
            if n:
                rank = (p * n + 99) // 100
                if rank <= n - rank + 1:
                    query = of_type.order_by("duration_ms")[rank - 1 : rank]
                else:
                    query = of_type.order_by("-duration_ms")[n - rank : n - rank + 1]
                picks[f"{label}{i}"] = (name, label, query)
    row = _one_row({key: query for key, (_, _, query) in picks.items()})
    for key, (name, label, _) in picks.items():
        setattr(result[name], f"{label}_ms", row.get(key))
    return list(result.values())


def _one_row(subqueries: dict) -> dict:
    """Several scalar subqueries read in one query (one row, whatever table it is selected from)."""
    if not subqueries:
        return {}
    annotated = SyncRun.objects.order_by().annotate(**{k: Subquery(q) for k, q in subqueries.items()})
    rows = list(annotated.values(*subqueries)[:1])
    return rows[0] if rows else {}


# --- the report ----------------------------------------------------------------------------------------------
class AnalyticsReport:
    """Everything the analytics page, its JSON and its CSV downloads show, for one window. Sections are
    worked out on first use from the window's days (read once)."""

    def __init__(self, window: Window):
        self.window = window

    @cached_property
    def _days(self) -> tuple[list[dict], list[Outage]]:
        return daily.window_figures(self.window)

    @property
    def days(self) -> list[dict]:
        return self._days[0]

    def _per_day(self, section: str, name: str) -> list[dict]:
        return [d.get(section, {}).get(name) or {} for d in self.days]

    @cached_property
    def availability(self) -> list[Availability]:
        w = self.window
        since = dict(
            HealthChange.objects.filter(data_type__in=w.types)
            .values_list("data_type")
            .annotate(first=Min("at"))
            .order_by()
        )
        out = []
        for name in w.types:
            per_day = self._per_day("availability", name)
            seconds = {s: sum(d.get(s, 0.0) for d in per_day) for s in STATES}
            out.append(
                Availability(data_type=name, seconds=seconds, days=per_day, recorded_since=since.get(name))
            )
        return out

    @cached_property
    def outage_rows(self) -> list[list]:
        """Every outage that overlaps the window as a compact row (Outage.as_row), newest first."""
        types = set(self.window.types)
        rows = [row for d in self.days for row in d.get("outages", []) if row[0] in types]
        rows += [o.as_row() for o in self._days[1]]
        rows.sort(key=lambda r: (r[1], r[2]), reverse=True)
        return rows

    def newest_outages(self, count: int | None = None) -> list[Outage]:
        outages = [Outage.from_row(row) for row in self.outage_rows[:count]]
        for o in outages:
            o.now = self.window.end
        return outages

    @property
    def outages(self) -> list[Outage]:
        """Every outage that overlaps the window, newest first."""
        return self.newest_outages()

    @cached_property
    def recovery(self) -> list[Recovery]:
        """One per type of the window, then all types together (when the window has several)."""
        return recovery_of(self.outage_rows, types=self.window.types)

    @property
    def recovery_total(self) -> Recovery:
        return self.recovery[-1]

    @cached_property
    def retries(self) -> list[RetryDay]:
        out = []
        for day, figures in zip(self.window.day_list, self.days, strict=True):
            item = RetryDay(day=day)
            for name in self.window.types:
                per_type = figures.get("retries", {}).get(name) or {}
                item.scheduled += per_type.get("queued", 0)
                item.exhausted += per_type.get("exhausted", 0)
                item.cancelled += per_type.get("cancelled", 0)
                for column, n in per_type.get("succeeded", {}).items():
                    item.succeeded[column] += n
            out.append(item)
        return out

    @cached_property
    def causes(self) -> Causes:
        w = self.window
        by_code = {}
        groups: dict[tuple[str, str], MessageGroup] = {}
        other = 0
        waits = defaultdict(Counter)
        for d, figures in enumerate(self.days):
            for name in w.types:
                for code, n in (figures.get("failures", {}).get(name) or {}).items():
                    by_code.setdefault((name, code), [0] * w.days)[d] += n
                for code, message, n, example in figures.get("messages", {}).get(name) or []:
                    group = groups.setdefault((message, code), MessageGroup(message=message, error_code=code))
                    group.count += n
                    group.types[name] += n
                    if n > group.example_count:
                        group.example, group.example_count = example, n
                other += figures.get("messages_other", {}).get(name, 0)
                for wait, n in (figures.get("retry_after", {}).get(name) or {}).items():
                    waits[name][float(wait)] += n
        retry_after = []
        for name in w.types:
            pairs = list(waits[name].items())
            item = RetryAfter(data_type=name, requests=sum(n for _, n in pairs))
            if pairs:
                item.median_seconds = weighted_rank(pairs, 50)
                item.p95_seconds = weighted_rank(pairs, 95)
                item.max_seconds = max(v for v, _ in pairs)
            retry_after.append(item)
        messages = sorted(groups.values(), key=lambda g: (-g.count, g.error_code, g.message))
        return Causes(by_code=by_code, messages=messages, other_messages=other, retry_after=retry_after)

    @cached_property
    def volume(self) -> Volume:
        w = self.window
        runs, changed = {}, {}
        for d, figures in enumerate(self.days):
            for name in w.types:
                for outcome, n in (figures.get("runs", {}).get(name) or {}).items():
                    runs.setdefault((name, outcome), [0] * w.days)[d] += n
                rows = figures.get("rows_changed", {}).get(name, 0)
                if rows:
                    changed.setdefault(name, [0] * w.days)[d] += rows
        finished = {name: sum(sum(runs.get((name, o), [])) for o in FINISHED_OUTCOMES) for name in w.types}
        return Volume(runs=runs, rows_changed=changed, durations=durations_of(w, finished))

    def as_json(self) -> dict:
        w = self.window
        total = self.recovery_total
        return {
            "window": {
                "days": w.days,
                "data_type": w.data_type,
                "types": list(w.types),
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
                "day_list": [d.isoformat() for d in w.day_list],
            },
            "availability": [
                {
                    "data_type": a.data_type,
                    "seconds": {s: round(v, 3) for s, v in a.seconds.items()},
                    "share": {s: round(v, 6) for s, v in a.shares.items()},
                    "recorded_since": a.recorded_since.isoformat() if a.recorded_since else None,
                    "per_day": [{s: round(d.get(s, 0.0), 3) for s in STATES} for d in a.days],
                }
                for a in self.availability
            ],
            "recovery": [r.as_json() for r in self.recovery],
            "outages": [_outage_json(o) for o in self.outages],
            "retries": {
                "days": [d.as_json() for d in self.retries],
                "healed_without_person": {
                    "recoverable_recovered": total.recoverable_recovered,
                    "healed": total.healed_without_person,
                    "share": _round(total.healed_share, 4),
                },
            },
            "causes": {
                "by_code": [
                    {"data_type": t, "error_code": c, "count": sum(v), "per_day": v}
                    for (t, c), v in sorted(self.causes.by_code.items())
                ],
                "messages": [g.as_json() for g in self.causes.messages],
                "other_messages": self.causes.other_messages,
                "retry_after": [r.as_json() for r in self.causes.retry_after],
            },
            "volume": {
                "runs": [
                    {"data_type": t, "outcome": o, "count": sum(v), "per_day": v}
                    for (t, o), v in sorted(self.volume.runs.items())
                ],
                "rows_changed": [
                    {"data_type": t, "count": sum(v), "per_day": v}
                    for t, v in sorted(self.volume.rows_changed.items())
                ],
                "durations": [d.as_json() for d in self.volume.durations],
            },
        }

    # --- the same numbers as tables (the CSV downloads) ------------------------------------------------------
    TABLES = (
        "availability",
        "recovery",
        "outages",
        "retries",
        "failures_by_code",
        "messages",
        "retry_after",
        "runs",
        "durations",
    )

    def table(self, name: str) -> tuple[list[str], list[list]]:
        """(header, rows) of one of TABLES. Raises KeyError for another name."""
        if name not in self.TABLES:
            raise KeyError(name)
        return getattr(self, f"_table_{name}")()

    def _table_availability(self):
        header = ["data_type", *(f"{s}_seconds" for s in STATES), *(f"{s}_share" for s in STATES)]
        rows = [
            [a.data_type, *(round(a.seconds[s], 3) for s in STATES), *(round(a.shares[s], 6) for s in STATES)]
            for a in self.availability
        ]
        return header, rows

    def _table_recovery(self):
        header = [
            "data_type",
            "outages",
            "recovered",
            "open",
            "median_seconds",
            "p95_seconds",
            *(f"ended_{e}" for e in ENDINGS),
            "recoverable_recovered",
            "healed_without_person",
        ]
        rows = [
            [
                r.data_type or "all",
                r.outages,
                r.recovered,
                r.open,
                _round(r.median_seconds),
                _round(r.p95_seconds),
                *(r.ended_by[e] for e in ENDINGS),
                r.recoverable_recovered,
                r.healed_without_person,
            ]
            for r in self.recovery
        ]
        return header, rows

    def _table_outages(self):
        header = list(_outage_json(None))
        return header, [list(_outage_json(o).values()) for o in self.outages]

    def _table_retries(self):
        header = [
            "day",
            "scheduled",
            *(f"succeeded_attempt_{c}" for c in ATTEMPT_COLUMNS),
            "exhausted",
            "cancelled",
        ]
        rows = [
            [
                d.day.isoformat(),
                d.scheduled,
                *(d.succeeded[c] for c in ATTEMPT_COLUMNS),
                d.exhausted,
                d.cancelled,
            ]
            for d in self.retries
        ]
        return header, rows

    def _table_failures_by_code(self):
        rows = [
            [day.isoformat(), name, code, per_day[i]]
            for (name, code), per_day in self.causes.by_code.items()
            for i, day in enumerate(self.window.day_list)
            if per_day[i]
        ]
        rows.sort()
        return ["day", "data_type", "error_code", "failures"], rows

    def _table_messages(self):
        rows = [
            [
                g.message,
                g.error_code,
                g.count,
                " ".join(f"{t}:{n}" for t, n in sorted(g.types.items())),
                g.example,
            ]
            for g in self.causes.messages
        ]
        if self.causes.other_messages:
            rows.append(["(other messages)", "", self.causes.other_messages, "", ""])
        return ["message", "error_code", "failures", "types", "example"], rows

    def _table_retry_after(self):
        header = ["data_type", "requests", "median_seconds", "p95_seconds", "max_seconds"]
        rows = [
            [r.data_type, r.requests, r.median_seconds, r.p95_seconds, r.max_seconds]
            for r in self.causes.retry_after
        ]
        return header, rows

    def _table_runs(self):
        w, rows = self.window, []
        for i, day in enumerate(w.day_list):
            for name in w.types:
                counts = [self.volume.runs.get((name, o), [0] * w.days)[i] for o in RUN_OUTCOMES]
                changed = self.volume.rows_changed.get(name, [0] * w.days)[i]
                if any(counts) or changed:
                    rows.append([day.isoformat(), name, *counts, changed])
        return ["day", "data_type", *RUN_OUTCOMES, "rows_changed"], rows

    def _table_durations(self):
        rows = [[d.data_type, d.runs, d.median_ms, d.p95_ms] for d in self.volume.durations]
        return ["data_type", "runs", "median_ms", "p95_ms"], rows


def _outage_json(o: Outage | None) -> dict:
    """One outage for JSON and CSV (with None: the keys only)."""
    if o is None:
        o = Outage(
            data_type="",
            started_at=timezone.now(),
            first_run_id=0,
            first_run_started=timezone.now(),
            error_code="",
            failures=0,
        )
    return {
        "data_type": o.data_type,
        "started_at": o.started_at.isoformat(),
        "ended_at": o.ended_at.isoformat() if o.ended_at else None,
        "seconds": round(o.seconds, 3),
        "ended_by": o.ended_by,
        "attempt": o.attempt,
        "failures": o.failures,
        "error_code": o.error_code,
        "recoverable": o.recoverable,
        "first_run_id": o.first_run_id,
        "end_run_id": o.end_run_id,
    }


def analytics_report(*, days: int = DEFAULT_DAYS, data_type: str | None = None, now=None) -> AnalyticsReport:
    """The analytics of the last `days` local days (today included) for `data_type` (None: every type).
    Raises ValueError for an unknown type or a window other than 7, 14, 30 or 90 days."""
    if days not in WINDOWS:
        raise ValueError(f"days must be one of {', '.join(map(str, WINDOWS))}, not {days}")
    if data_type and data_type not in registry.DATATYPES:
        raise ValueError(f"unknown data type {data_type!r}; known: {', '.join(registry.NAMES)}")
    return AnalyticsReport(daily.make_window(days=days, data_type=data_type or None, now=now))


# --- Prometheus ----------------------------------------------------------------------------------------------
def time_to_recovery_histogram(*, now=None) -> HistogramMetricFamily:
    """`finalesync_time_to_recovery_seconds{data_type}`: how long the outages that ended within the last
    CLEANUP_SYNC_RUN_DAYS days (the sync runs kept) lasted. Read at each scrape from the same days as the
    analytics page (their per-day bucket counts); like the run-duration histogram it drops what falls out
    of that span, which Prometheus sees as a counter reset."""
    window = daily.make_window(days=max(1, settings.CLEANUP_SYNC_RUN_DAYS), now=now)
    family = HistogramMetricFamily(
        "finalesync_time_to_recovery_seconds",
        "Time from a type's first failed sync to its next successful run, over the outages that ended "
        "within the sync runs kept.",
        labels=["data_type"],
    )
    for name, counts in daily.recovery_buckets(window).items():
        cumulative, buckets = 0, []
        for bound, n in zip(TTR_BUCKETS, counts, strict=False):
            cumulative += n
            buckets.append((str(float(bound)), cumulative))
        buckets.append(("+Inf", sum(counts[:-1])))
        family.add_metric([name], buckets, sum_value=counts[-1])
    return family
