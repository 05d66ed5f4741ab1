"""The original system's monitoring SQL, verbatim, runs unchanged on our tables."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from health.models import ConnectionHealth
from retries.models import RetryItem

CONNECTION_HEALTH_DASHBOARD = """
SELECT
  data_type,
  status,
  last_check_time,
  item_count,
  consecutive_failures,
  CASE
    WHEN status = 'healthy' AND consecutive_failures = 0 THEN 'excellent'
    WHEN status = 'healthy' THEN 'good'
    WHEN status = 'degraded' THEN 'fair'
    ELSE 'poor'
  END as overall_health
FROM sync_connection_health;
"""

RETRY_QUEUE_STATUS = """
SELECT
  data_type,
  operation,
  status,
  retry_count,
  next_retry_at,
  last_error_message
FROM sync_retry_queue
WHERE status IN ('pending', 'processing')
ORDER BY priority DESC, created_at ASC;
"""


def run(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql.strip().rstrip(";"))
        return cursor.fetchall()


@pytest.mark.django_db
def test_seed_connection_health_query_grades_our_rows():
    ConnectionHealth.objects.create(data_type="inventory", status="healthy")
    ConnectionHealth.objects.create(data_type="vendors", status="degraded", consecutive_failures=2)
    ConnectionHealth.objects.create(data_type="boms", status="unhealthy", consecutive_failures=3)
    grades = {row[0]: row[5] for row in run(CONNECTION_HEALTH_DASHBOARD)}
    assert grades == {"inventory": "excellent", "vendors": "fair", "boms": "poor"}


@pytest.mark.django_db
def test_seed_retry_queue_query_lists_open_retries_by_priority_then_age():
    now = timezone.now()
    RetryItem.objects.create(
        data_type="vendors", priority=2, next_retry_at=now, created_at=now - timedelta(hours=2)
    )
    RetryItem.objects.create(data_type="inventory", priority=3, next_retry_at=now, created_at=now)
    RetryItem.objects.create(
        data_type="boms", priority=2, next_retry_at=now, created_at=now - timedelta(hours=1)
    )
    RetryItem.objects.create(data_type="purchase_orders", status="completed", next_retry_at=now)
    rows = run(RETRY_QUEUE_STATUS)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("inventory", "sync", "pending"),
        ("vendors", "sync", "pending"),
        ("boms", "sync", "pending"),
    ]
