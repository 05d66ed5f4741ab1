"""Grades and staleness of one data type's connection health.

Pure functions: every input, `now` included, is an argument, so any moment can be graded in a test.

    excellent  healthy, not stale, no failure in the last 24 h
    good       healthy, but stale (within four intervals) or with a failure in the last 24 h
    fair       degraded (recoverable failures, a retry is queued)
    poor       unhealthy, 3+ consecutive failures, or no success for more than four intervals
    unknown    never checked

Stale: the last success is older than the interval plus a grace (default one interval, at least 5 min).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models

from finalesync import texts

from .models import HealthStatus

MIN_GRACE = timedelta(minutes=5)
# Stale beyond this many intervals counts as unhealthy: the schedule has silently stopped for this type.
VERY_STALE_INTERVALS = 4
RECENT_FAILURE_WINDOW = timedelta(hours=24)
# Failures in a row that turn a type unhealthy (recording.py writes it; grading reads it).
UNHEALTHY_AFTER = 3


class Grade(models.TextChoices):
    EXCELLENT = "excellent"
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"
    UNKNOWN = "unknown"


def default_grace(interval: timedelta) -> timedelta:
    """One interval, but never less than five minutes (a 1-minute type must not flap on a slow cycle)."""
    return max(interval, MIN_GRACE)


@dataclass(frozen=True)
class Staleness:
    stale: bool
    very_stale: bool
    # Time since the last success (None when there never was one).
    age: timedelta | None
    # When the type turns (or turned) stale, and when staleness counts as unhealthy.
    stale_at: datetime | None
    very_stale_at: datetime | None


def staleness(
    *,
    last_success: datetime | None,
    interval: timedelta,
    now: datetime,
    grace: timedelta | None = None,
    checked: bool = True,
) -> Staleness:
    """Whether the data of a type is stale at `now`.

    Stale when the last success is older than `interval` + `grace` (default `default_grace(interval)`); very
    stale (counts as unhealthy) when it is older than four intervals, and never before it is stale. A type
    that was checked but never succeeded is stale (it has no good data); one never checked is not.
    """
    if last_success is None:
        return Staleness(stale=checked, very_stale=False, age=None, stale_at=None, very_stale_at=None)
    grace = default_grace(interval) if grace is None else grace
    stale_at = last_success + interval + grace
    very_stale_at = max(last_success + VERY_STALE_INTERVALS * interval, stale_at)
    return Staleness(
        stale=now > stale_at,
        very_stale=now > very_stale_at,
        age=max(now - last_success, timedelta(0)),
        stale_at=stale_at,
        very_stale_at=very_stale_at,
    )


@dataclass(frozen=True)
class Assessment:
    grade: Grade
    # The stored status, made worse by what the row alone does not say (staleness, a failure streak).
    status: str
    stale: bool
    very_stale: bool
    # One line for people: why this grade.
    reason: str


def assess(
    *,
    status: str,
    consecutive_failures: int,
    last_success_time: datetime | None,
    last_failure_time: datetime | None,
    interval: timedelta,
    now: datetime,
    grace: timedelta | None = None,
) -> Assessment:
    """Grade one row of `sync_connection_health` at `now` (see the module docstring for the table).

    Returns the grade, the effective status (unhealthy also when 3+ failures in a row or stale beyond four
    intervals), the staleness flags and a short reason. Raises nothing.
    """
    if status == HealthStatus.UNKNOWN:
        return Assessment(Grade.UNKNOWN, HealthStatus.UNKNOWN, False, False, "never checked")
    st = staleness(last_success=last_success_time, interval=interval, now=now, grace=grace)
    recent_failure = last_failure_time is not None and now - last_failure_time < RECENT_FAILURE_WINDOW
    effective = status

    if st.very_stale:
        effective = HealthStatus.UNHEALTHY
        reason = f"no successful sync for {_span(st.age)} (more than {VERY_STALE_INTERVALS} intervals)"
    elif consecutive_failures >= UNHEALTHY_AFTER:
        effective = HealthStatus.UNHEALTHY
        reason = f"{consecutive_failures} failures in a row"
    elif status == HealthStatus.UNHEALTHY:
        reason = "the last failure needs a person" if consecutive_failures else "marked unhealthy"
    elif status == HealthStatus.DEGRADED:
        reason = f"{consecutive_failures} recent failure(s); a retry is queued"
    elif st.stale:
        last = texts.ago(last_success_time, now) if last_success_time else "never"
        reason = f"stale: last success {last}, expected every {_span(interval)}"
    elif recent_failure:
        reason = f"recovered; last failure {texts.ago(last_failure_time, now)}"
    else:
        reason = "synced on time, no failure in 24 h"

    if effective == HealthStatus.UNHEALTHY:
        grade = Grade.POOR
    elif effective == HealthStatus.DEGRADED:
        grade = Grade.FAIR
    elif st.stale or recent_failure:
        grade = Grade.GOOD
    else:
        grade = Grade.EXCELLENT
    return Assessment(grade, effective, st.stale, st.very_stale, reason)


def _span(delta: timedelta | None) -> str:
    return "ever" if delta is None else texts.duration(delta)
