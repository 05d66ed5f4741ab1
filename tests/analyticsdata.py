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


# --- a simulated month, for the README's screenshot ----------------------------------------------------------
INTERVALS = {"inventory": 15, "vendors": 60, "boms": 60, "purchase_orders": 15}
RECOVERABLE = [
    ("server_error", "Finale failed serving the {label} report (HTTP 503)"),
    ("server_error", "Finale failed serving the {label} report (HTTP 502)"),
    ("timeout", "Finale did not send any of the {label} report for {n} s (read timeout)"),
    ("rate_limited", "Finale asked us to slow down (HTTP 429); Retry-After {n} s"),
    ("network", "Could not connect to Finale: connection reset by peer"),
]
NEEDS_PERSON = [
    ("auth", "Finale rejected the API key/secret for the {label} report (HTTP 401)"),
    ("empty_data", "Finale returned no {label} rows (header only or nothing usable)"),
]


def simulate_month(*, now=NOW, days=30, seed=11):
    """Runs on each type's schedule for `days` days before `now`, with outages now and then: most heal by
    themselves or by a retry (attempts 5, 10 and 20 min apart), some need a person. Failure logs, retries,
    the health history and a pause follow from them, as the engine and recording.py would write them."""
    import random

    rng = random.Random(seed)
    ensure_configs()
    runs, logs, changes, items = [], [], [], []
    start = now - timedelta(days=days)
    for name, minutes in INTERVALS.items():
        label = name.replace("_", " ")
        ConnectionHealth.objects.update_or_create(data_type=name, defaults={"status": "healthy"})
        changes.append(HealthChange(data_type=name, at=start, status="healthy", previous=""))
        moment, status = start, "healthy"
        while moment < now:
            if rng.random() > (0.012 if minutes == 60 else 0.004):
                runs.append(_sim_run(name, moment, "success", rng, trigger="schedule"))
                moment += timedelta(minutes=minutes)
                continue
            # an outage
            person = rng.random() < 0.18
            code, text = rng.choice(NEEDS_PERSON if person else RECOVERABLE)
            wait = rng.choice([60, 120, 300])
            message = text.format(label=label, n=wait if code == "rate_limited" else rng.choice([90, 120]))
            failures = [(moment, "schedule", "system")]
            item_id = len(items) + 1
            if person:
                healed, how = moment + timedelta(minutes=rng.choice([45, 90, 150, 240])), "manual"
            elif rng.random() < 0.12:  # someone pressed "Sync now" before the first retry
                healed, how = moment + timedelta(minutes=3), "manual"
                items.append(
                    RetryItem(
                        data_type=name,
                        status="completed",
                        next_retry_at=moment,
                        error_code=code,
                        last_error_message=message,
                        resolution="superseded by a manual sync",
                        created_at=moment + timedelta(seconds=30),
                        updated_at=healed,
                        completed_at=healed,
                    )
                )
            else:
                heal_on = rng.choice([1, 1, 1, 2, 2, 3, 0])  # 0: the retries run out
                retry_at = moment
                for attempt, gap in enumerate((5, 10, 20), start=1):
                    retry_at += timedelta(minutes=max(gap, wait / 60 if code == "rate_limited" else 0))
                    if attempt == heal_on:
                        healed, how = retry_at, "retry"
                        break
                    failures.append((retry_at, "retry", f"retry #{item_id}"))
                else:
                    healed = moment + timedelta(minutes=minutes * rng.choice([2, 3]))
                    how = "schedule"
                items.append(
                    RetryItem(
                        data_type=name,
                        status="completed" if how == "retry" else "failed",
                        retry_count=len(failures) - 1,
                        next_retry_at=moment,
                        error_code=code,
                        last_error_message=message,
                        created_at=moment + timedelta(seconds=30),
                        updated_at=healed,
                        completed_at=healed if how == "retry" else failures[-1][0] + timedelta(seconds=30),
                    )
                )
            for i, (when, trigger, by) in enumerate(failures):
                if when >= now:
                    break
                outcome = "rolled_back" if code == "empty_data" else "failed"
                runs.append(
                    _sim_run(name, when, outcome, rng, trigger=trigger, by=by, code=code, error=message)
                )
                logs.append(
                    FailureLog(
                        data_type=name,
                        error_message=message,
                        error_code=code,
                        error_details={"retry_after": wait} if code == "rate_limited" else {},
                        recoverable=not person,
                        trigger=trigger,
                        rolled_back=outcome == "rolled_back",
                        created_at=when + timedelta(seconds=RUN_SECONDS),
                    )
                )
                new = "unhealthy" if person or i >= 2 else "degraded"
                if new != status:
                    changes.append(
                        HealthChange(
                            data_type=name,
                            at=when + timedelta(seconds=RUN_SECONDS),
                            status=new,
                            previous=status,
                        )
                    )
                    status = new
            if healed < now:
                by = f"retry #{item_id}" if how == "retry" else ("ops" if how == "manual" else "system")
                runs.append(_sim_run(name, healed, "success", rng, trigger=how, by=by))
                changes.append(
                    HealthChange(
                        data_type=name,
                        at=healed + timedelta(seconds=RUN_SECONDS),
                        status="healthy",
                        previous=status,
                    )
                )
                status = "healthy"
            moment = max(healed, moment) + timedelta(minutes=minutes)
    SyncRun.objects.bulk_create(runs, batch_size=2000)
    FailureLog.objects.bulk_create(logs, batch_size=2000)
    HealthChange.objects.bulk_create(changes, batch_size=2000)
    RetryItem.objects.bulk_create(items, batch_size=2000)
    ops = Actor(name="ops", source=AuditLog.Source.DASHBOARD)
    with time_machine.travel(now - timedelta(days=9, hours=3), tick=False):
        actions.pause(data_type="purchase_orders", actor=ops, reason="Finale maintenance")
    with time_machine.travel(now - timedelta(days=8, hours=1), tick=False):
        actions.resume(data_type="purchase_orders", actor=ops)
    with time_machine.travel(now - timedelta(days=3, hours=6), tick=False):
        actions.snooze(data_type="boms", actor=ops, hours=12)


def _sim_run(name, started, outcome, rng, *, trigger, by="system", code="", error=""):
    base = {"inventory": 6000, "vendors": 900, "boms": 1500, "purchase_orders": 2500}[name]
    ms = int(base * rng.lognormvariate(0, 0.35)) if outcome != "skipped" else 0
    return SyncRun(
        data_type=name,
        trigger=trigger,
        triggered_by=by,
        started_at=started,
        finished_at=started + timedelta(seconds=RUN_SECONDS),
        outcome=outcome,
        error_code=code,
        error=error,
        duration_ms=ms,
        item_count=0,
        created=rng.randint(0, 3) if outcome == "success" else 0,
        updated=rng.randint(0, 40) if outcome == "success" else 0,
        deleted=rng.randint(0, 2) if outcome == "success" else 0,
    )
