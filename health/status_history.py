"""The health history: each change of a type's stored status, kept as a HealthChange row.

`sync_connection_health` holds only the status now; the analytics page needs how long each status lasted.
recording.py calls `note_status` after every write, and a row is added only when the status differs from
the last one kept, so a type that stays healthy adds nothing however often it syncs.
"""

from __future__ import annotations

from datetime import datetime

from .models import ConnectionHealth, HealthChange, HealthStatus


def note_status(*, data_type: str, now: datetime) -> HealthChange | None:
    """Compare the stored status of `data_type` with the last one in its history; when it changed, add a
    HealthChange at `now` and return it (else None). Two reads and at most one insert. A type is synced by
    one worker at a time (the type lock), so two workers do not race to record the same change."""
    status = ConnectionHealth.objects.filter(pk=data_type).values_list("status", flat=True).first()
    if status is None:
        return None
    last = (
        HealthChange.objects.filter(data_type=data_type)
        .order_by("-at", "-id")
        .values_list("status", flat=True)
        .first()
    )
    if status == last:
        return None
    return HealthChange.objects.create(
        data_type=data_type, at=now, status=status, previous=last or HealthStatus.UNKNOWN
    )
