"""Writing sync outcomes into `sync_connection_health`.

Each update is one UPDATE with F() expressions, so concurrent workers never lose a failure count.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When

from . import status_history
from .grading import UNHEALTHY_AFTER
from .models import ConnectionHealth, HealthStatus


def ensure_row(data_type: str) -> None:
    if not ConnectionHealth.objects.filter(pk=data_type).exists():
        try:
            with transaction.atomic():
                ConnectionHealth.objects.create(data_type=data_type)
        except IntegrityError:
            pass  # another worker created it first


def record_success(*, data_type: str, item_count: int, now) -> None:
    """The type synced: healthy, failure count reset."""
    ensure_row(data_type)
    ConnectionHealth.objects.filter(pk=data_type).update(
        status=HealthStatus.HEALTHY,
        last_check_time=now,
        last_success_time=now,
        item_count=item_count,
        error_message=None,
        consecutive_failures=0,
        updated_at=now,
    )
    status_history.note_status(data_type=data_type, now=now)


def record_failure(*, data_type: str, error_message: str, recoverable: bool, now) -> None:
    """A failed run: degraded while recoverable (unhealthy from the third in a row), else unhealthy at once.
    `item_count` is left alone: the kept rows are still there."""
    ensure_row(data_type)
    if recoverable:
        status = Case(
            When(consecutive_failures__gte=UNHEALTHY_AFTER - 1, then=Value(HealthStatus.UNHEALTHY)),
            default=Value(HealthStatus.DEGRADED),
        )
    else:
        status = Value(HealthStatus.UNHEALTHY)
    ConnectionHealth.objects.filter(pk=data_type).update(
        status=status,
        last_check_time=now,
        last_failure_time=now,
        error_message=error_message[:2000],
        consecutive_failures=F("consecutive_failures") + 1,
        updated_at=now,
    )
    status_history.note_status(data_type=data_type, now=now)
