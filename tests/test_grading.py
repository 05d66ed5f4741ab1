"""Grades and staleness, table-driven: every grade is reached, every boundary is on the right side."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from health.grading import Grade, assess, default_grace, staleness
from health.models import ConnectionHealth

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def ago(delta):
    return NOW - delta


# (case, status, consecutive failures, last success age, last failure age, interval, grade, effective, stale)
CASES = [
    ("never checked", "unknown", 0, None, None, 5 * MIN, Grade.UNKNOWN, "unknown", False),
    ("fresh, no failure", "healthy", 0, 2 * MIN, None, 5 * MIN, Grade.EXCELLENT, "healthy", False),
    (
        "failure 25 h ago is forgotten",
        "healthy",
        0,
        2 * MIN,
        25 * HOUR,
        5 * MIN,
        Grade.EXCELLENT,
        "healthy",
        False,
    ),
    ("exactly at interval + grace", "healthy", 0, 10 * MIN, None, 5 * MIN, Grade.EXCELLENT, "healthy", False),
    ("recovered within 24 h", "healthy", 0, 2 * MIN, 3 * HOUR, 5 * MIN, Grade.GOOD, "healthy", False),
    ("stale within four intervals", "healthy", 0, 11 * MIN, None, 5 * MIN, Grade.GOOD, "healthy", True),
    ("hourly type, 2 h 30 min", "healthy", 0, 150 * MIN, None, 60 * MIN, Grade.GOOD, "healthy", True),
    ("degraded", "degraded", 1, 6 * MIN, 1 * MIN, 5 * MIN, Grade.FAIR, "degraded", False),
    ("degraded and stale", "degraded", 2, 15 * MIN, 1 * MIN, 5 * MIN, Grade.FAIR, "degraded", True),
    ("unhealthy: needs a person", "unhealthy", 1, 3 * MIN, 1 * MIN, 5 * MIN, Grade.POOR, "unhealthy", False),
    ("three failures in a row", "degraded", 3, 20 * MIN, 1 * MIN, 60 * MIN, Grade.POOR, "unhealthy", False),
    ("stale beyond four intervals", "healthy", 0, 21 * MIN, None, 5 * MIN, Grade.POOR, "unhealthy", True),
    ("hourly type, 4 h 1 min", "healthy", 0, 241 * MIN, None, 60 * MIN, Grade.POOR, "unhealthy", True),
    ("failing, never succeeded", "degraded", 1, None, 1 * MIN, 5 * MIN, Grade.FAIR, "degraded", True),
]


@pytest.mark.parametrize(
    "status, failures, success_age, failure_age, interval, grade, effective, stale",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_grade(status, failures, success_age, failure_age, interval, grade, effective, stale):
    result = assess(
        status=status,
        consecutive_failures=failures,
        last_success_time=ago(success_age) if success_age is not None else None,
        last_failure_time=ago(failure_age) if failure_age is not None else None,
        interval=interval,
        now=NOW,
    )
    assert (result.grade, result.status, result.stale) == (grade, effective, stale), result.reason
    assert result.reason


def test_every_grade_is_reachable():
    assert {c[6] for c in CASES} == set(Grade)


@pytest.mark.parametrize(
    "interval, grace",
    [(1 * MIN, 5 * MIN), (5 * MIN, 5 * MIN), (15 * MIN, 15 * MIN), (60 * MIN, 60 * MIN)],
)
def test_default_grace_is_one_interval_but_at_least_five_minutes(interval, grace):
    assert default_grace(interval) == grace


# (last success age, interval, grace, stale, very stale)
STALENESS = [
    (6 * MIN, 1 * MIN, None, False, False),  # 1 min + 5 min grace: not yet
    (7 * MIN, 1 * MIN, None, True, True),  # stale, and past four intervals too
    (29 * MIN, 15 * MIN, None, False, False),
    (31 * MIN, 15 * MIN, None, True, False),
    (60 * MIN, 15 * MIN, None, True, False),  # exactly four intervals: not beyond
    (61 * MIN, 15 * MIN, None, True, True),
    (31 * MIN, 15 * MIN, 30 * MIN, False, False),  # a custom grace
    (100 * MIN, 15 * MIN, 120 * MIN, False, False),  # never very stale before stale
]


@pytest.mark.parametrize("age, interval, grace, stale, very_stale", STALENESS)
def test_staleness_boundaries(age, interval, grace, stale, very_stale):
    result = staleness(last_success=ago(age), interval=interval, now=NOW, grace=grace)
    assert (result.stale, result.very_stale) == (stale, very_stale)
    assert result.age == age


def test_staleness_without_a_success_depends_on_having_been_checked():
    assert staleness(last_success=None, interval=5 * MIN, now=NOW).stale is True
    assert staleness(last_success=None, interval=5 * MIN, now=NOW, checked=False).stale is False


# The original system's monitoring query, run as it was written against the table.
SEED_GRADING_SQL = """
SELECT data_type, status, consecutive_failures,
       CASE
         WHEN status = 'healthy' AND consecutive_failures = 0 THEN 'excellent'
         WHEN status = 'healthy' THEN 'good'
         WHEN status = 'degraded' THEN 'fair'
         WHEN status = 'unhealthy' THEN 'poor'
         ELSE 'unknown'
       END AS health_grade,
       item_count, error_message, last_check_time, last_success_time, last_failure_time, updated_at
FROM sync_connection_health
ORDER BY data_type
"""


@pytest.mark.django_db
def test_seed_grading_query_still_runs_on_the_table():
    ConnectionHealth.objects.create(data_type="inventory", status="healthy", item_count=10)
    ConnectionHealth.objects.create(data_type="vendors", status="degraded", consecutive_failures=1)
    with connection.cursor() as cursor:
        cursor.execute(SEED_GRADING_SQL)
        rows = cursor.fetchall()
    assert [(r[0], r[3]) for r in rows] == [("inventory", "excellent"), ("vendors", "fair")]
