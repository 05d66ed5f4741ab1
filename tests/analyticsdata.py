"""A known week of history for the analytics tests: outages that heal by themselves, by a retry, by a
person, one still open and one that began before the window; pauses, a snooze and an admin pause; retries
queued, succeeded, exhausted and cancelled; failure logs with Retry-After waits.

Every time is fixed (NOW is Friday 20 March 2026, 12:00 UTC) so each figure in test_analytics.py can be
worked out by hand from this file. Times below are UTC; runs finish 30 s after they start.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from finalesync import actions
from finalesync.actions import Actor
from finalesync.models import AuditLog, SyncRun
from finalesync.sync import ensure_configs
from health.models import ConnectionHealth, HealthChange
from retries.models import FailureLog, RetryItem

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
RUN_SECONDS = 30


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A time in March 2026."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def run(
    data_type,
    started,
    outcome,
    *,
    trigger="schedule",
    by="system",
    code="",
    ms=1000,
    created=0,
    updated=0,
    deleted=0,
    log: str | None = None,
    details=None,
    recoverable=None,
):
    """A sync run (and its failure log when `log` is a message)."""
    sync_run = SyncRun.objects.create(
        data_type=data_type,
        trigger=trigger,
        triggered_by=by,
        started_at=started,
        finished_at=started + timedelta(seconds=RUN_SECONDS),
        outcome=outcome,
        error_code=code,
        error="" if log is None else log,
        duration_ms=ms,
        created=created,
        updated=updated,
        deleted=deleted,
    )
    if log is not None:
        FailureLog.objects.create(
            data_type=data_type,
            error_message=log,
            error_code=code,
            error_details=details or {},
            recoverable=recoverable,
            trigger=trigger,
            rolled_back=outcome == "rolled_back",
            sync_run=sync_run,
            created_at=started + timedelta(seconds=RUN_SECONDS),
        )
    return sync_run


def change(data_type, when, status, previous=""):
    HealthChange.objects.create(data_type=data_type, at=when, status=status, previous=previous)


def retry_item(
    data_type, created, status, *, completed=None, code="server_error", retry_count=0, resolution=""
):
    return RetryItem.objects.create(
        data_type=data_type,
        status=status,
        retry_count=retry_count,
        next_retry_at=created + timedelta(minutes=5),
        error_code=code,
        last_error_message=f"{code} from Finale",
        resolution=resolution,
        created_at=created,
        updated_at=completed or created,
        completed_at=completed,
    )


def seed_history():
    ensure_configs()
    for name in ("inventory", "vendors", "boms", "purchase_orders"):
        ConnectionHealth.objects.update_or_create(data_type=name, defaults={"status": "healthy"})
    inv_503 = "Finale failed serving the inventory report (HTTP 503)"

    # --- inventory: three outages in the window, one in the look-back day before it --------------------------
    run("inventory", at(12, 10), "success", ms=1000)
    run("inventory", at(13, 12), "failed", code="server_error", ms=1000, log=inv_503, recoverable=True)
    run("inventory", at(13, 12, 10), "success", ms=1000)  # healed before the window: not listed
    # A: server error, healed by the retry's second attempt (15 min)
    run("inventory", at(15, 10), "failed", code="server_error", ms=1000, log=inv_503, recoverable=True)
    run(
        "inventory",
        at(15, 10, 5),
        "failed",
        trigger="retry",
        by="retry #901",
        code="server_error",
        ms=2000,
        log=inv_503,
        recoverable=True,
    )
    run("inventory", at(15, 10, 15), "success", trigger="retry", by="retry #901", ms=3000, updated=4)
    run("inventory", at(15, 11), "success", ms=4000, created=5, updated=10, deleted=1)
    # B: two timeouts, healed by the schedule (10 min)
    timeout = "Finale did not send any of the inventory report for {} s (read timeout)"
    run("inventory", at(17, 8), "failed", code="timeout", ms=5000, log=timeout.format(120), recoverable=True)
    run(
        "inventory", at(17, 8, 5), "failed", code="timeout", ms=6000, log=timeout.format(90), recoverable=True
    )
    run("inventory", at(17, 8, 10), "success", ms=7000, updated=3)
    run("inventory", at(18, 9), "skipped", ms=0)
    # C: credentials refused, healed by a person's manual sync (1 h)
    auth = "Finale rejected the API key/secret for the inventory report (HTTP 401)"
    run("inventory", at(19, 9), "failed", code="auth", ms=8000, log=auth, recoverable=False)
    run("inventory", at(19, 10), "success", trigger="manual", by="ops", ms=9000, created=2)

    # --- vendors: one outage that began before the window, one still open ------------------------------------
    network = "Could not connect to Finale: connection reset by peer"
    run("vendors", at(9, 6), "success", ms=1000)
    run("vendors", at(10, 6), "failed", code="network", log=network, recoverable=True)
    run("vendors", at(11, 6), "failed", code="network", log=network, recoverable=True)
    run(
        "vendors",
        at(13, 20),
        "failed",
        trigger="retry",
        by="retry #902",
        code="network",
        log=network,
        recoverable=True,
    )
    # D: healed by retry #902's second attempt, 3 days 20 h after it began
    run("vendors", at(14, 2), "success", trigger="retry", by="retry #902", ms=2000, updated=7)
    # E: rate limited twice, still open at NOW
    slow = "Finale asked us to slow down (HTTP 429); Retry-After {} s"
    run(
        "vendors",
        at(20, 6),
        "failed",
        code="rate_limited",
        ms=3000,
        log=slow.format(120),
        details={"retry_after": 120},
        recoverable=True,
    )
    run(
        "vendors",
        at(20, 7),
        "failed",
        trigger="retry",
        by="retry #903",
        code="rate_limited",
        ms=4000,
        log=slow.format(60),
        details={"retry_after": 60},
        recoverable=True,
    )

    # --- boms: refused empty data put right by a person's restore, a failed restore, a server error -----------
    empty = "Finale returned no bills of materials rows (header only or nothing usable)"
    # F: rolled back, healed by a restore (1 h)
    run("boms", at(16, 12), "rolled_back", code="empty_data", ms=1000, log=empty, recoverable=False)
    run("boms", at(16, 13), "success", trigger="restore", by="ops", ms=2000, updated=50)
    run("boms", at(16, 14), "success", ms=3000)
    # our own database refused a restore: neither starts nor extends an outage
    run("boms", at(18, 10), "failed", trigger="restore", by="ops", code="restore_failed", ms=4000)
    # H: server error, healed by a person's command (30 min)
    run(
        "boms",
        at(19, 15),
        "failed",
        code="server_error",
        ms=5000,
        log="Finale failed serving the bills of materials report (HTTP 502)",
        recoverable=True,
    )
    run("boms", at(19, 15, 30), "success", trigger="cli", by="ops", ms=6000, created=1, deleted=2)

    # --- the health history ---------------------------------------------------------------------------------
    change("inventory", at(1, 0), "healthy")  # seeded when the history began
    for when, status, before in [
        (at(15, 10, 0, 30), "degraded", "healthy"),
        (at(15, 10, 15, 30), "healthy", "degraded"),
        (at(17, 8, 0, 30), "degraded", "healthy"),
        (at(17, 8, 10, 30), "healthy", "degraded"),
        (at(19, 9, 0, 30), "unhealthy", "healthy"),
        (at(19, 10, 0, 30), "healthy", "unhealthy"),
    ]:
        change("inventory", when, status, before)
    change("vendors", at(9, 6), "healthy")
    change("vendors", at(10, 6, 0, 30), "degraded", "healthy")
    change("vendors", at(11, 6, 0, 30), "unhealthy", "degraded")
    change("vendors", at(14, 2, 0, 30), "healthy", "unhealthy")
    change("vendors", at(20, 6, 0, 30), "degraded", "healthy")
    # boms: no history before 16 March (the time before counts as not recorded)
    change("boms", at(16, 12, 0, 30), "unhealthy", "unknown")
    change("boms", at(16, 14, 0, 30), "healthy", "unhealthy")
    change("boms", at(19, 15, 0, 30), "degraded", "healthy")
    change("boms", at(19, 15, 30, 30), "healthy", "degraded")
    change("purchase_orders", at(1, 0), "healthy")

    # --- pauses, through the same actions the dashboard buttons call ---------------------------------------
    ops = Actor(name="ops", source=AuditLog.Source.DASHBOARD)
    with time_machine.travel(at(13, 0), tick=False):
        actions.snooze(data_type="boms", actor=ops, hours=30)  # until 14 March 06:00, inside the window
    with time_machine.travel(at(16, 0), tick=False):
        actions.pause(data_type="purchase_orders", actor=ops)
    with time_machine.travel(at(17, 0), tick=False):
        actions.resume(data_type="purchase_orders", actor=ops)
    with time_machine.travel(at(18, 10), tick=False):
        actions.snooze(data_type="purchase_orders", actor=ops, hours=2)
        try:
            actions.snooze(data_type="vendors", actor=ops, hours=-1)  # refused: changes nothing
        except actions.ActionRefused:
            pass
    # The admin's change form writes this entry when a person ticks "paused".
    actions.record(
        actor=Actor(name="admin", source=AuditLog.Source.ADMIN),
        action=AuditLog.Action.CHANGE_SETTINGS,
        target="purchase_orders",
        data_type="purchase_orders",
        outcome=AuditLog.Outcome.SUCCESS,
        message="Changed interval_minutes to 30, paused to True",
    )
    AuditLog.objects.filter(action=AuditLog.Action.CHANGE_SETTINGS).update(created_at=at(20, 6))

    # --- the retry queue ------------------------------------------------------------------------------------
    retry_item("inventory", at(15, 10, 0, 30), "completed", completed=at(15, 10, 15, 30), retry_count=1)
    retry_item("vendors", at(13, 12), "completed", completed=at(14, 2, 0, 30), code="network", retry_count=1)
    retry_item("vendors", at(20, 6, 0, 30), "pending", code="rate_limited", retry_count=1)
    retry_item(
        "boms",
        at(18, 8),
        "failed",
        completed=at(18, 9, 15),
        retry_count=3,
        resolution="gave up after 3 retries",
    )
    retry_item("inventory", at(17, 8, 0, 30), "cancelled", completed=at(17, 8, 7), code="timeout")
    retry_item(
        "purchase_orders",
        at(19, 11),
        "failed",
        completed=at(19, 11, 5),
        code="auth",
        resolution="not recoverable (auth): needs a person",
    )
    retry_item("inventory", at(1, 9), "completed", completed=at(1, 9, 10))  # long before the window
