"""Rows for the operator-view tests: users with and without permissions, and health, runs, failures,
retries, runs and audit entries in bulk (without Finale, for the pages' own tests)."""

from __future__ import annotations

import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from finalesync.datatypes import registry
from finalesync.models import AuditLog, SyncRun
from finalesync.sync import ensure_configs
from health.models import ConnectionHealth, HealthChange
from retries.models import OPEN_STATUSES, FailureLog, RetryItem, RetryStatus

PASSWORD = "pw-for-tests-only"
# (error code, message, recoverable) as the engine records them
FAILURE_KINDS = [
    ("server_error", "Finale failed serving the {name} report (HTTP 503)", True),
    ("server_error", "Finale failed serving the {name} report (HTTP 502)", True),
    ("timeout", "Finale did not send any of the {name} report for 120 s (read timeout)", True),
    ("rate_limited", "Finale asked us to slow down (HTTP 429); Retry-After 60 s", True),
    ("network", "Could not connect to Finale: connection reset by peer", True),
    ("empty_data", "Finale returned no {name} rows (header only or nothing usable)", False),
    ("auth", "Finale rejected the API key/secret for the {name} report (HTTP 401)", False),
]
TYPES = list(registry.NAMES)


def make_user(username="ops", *, staff=True, superuser=False, perms=()):
    user = get_user_model().objects.create_user(
        username=username, password=PASSWORD, is_staff=staff, is_superuser=superuser
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def health_rows(now=None):
    """One row per type, in four different states."""
    now = now or timezone.now()
    ensure_configs()
    states = [
        ("inventory", "healthy", 0, now - timedelta(minutes=3), None, None),
        (
            "vendors",
            "degraded",
            1,
            now - timedelta(minutes=70),
            now - timedelta(minutes=2),
            "HTTP 503 from Finale",
        ),
        ("boms", "unhealthy", 1, now - timedelta(hours=5), now - timedelta(minutes=40), "HTTP 401: bad key"),
        ("purchase_orders", "healthy", 0, now - timedelta(minutes=4), now - timedelta(hours=3), None),
    ]
    for name, status, failures, success, failure, error in states:
        ConnectionHealth.objects.update_or_create(
            data_type=name,
            defaults=dict(
                status=status,
                consecutive_failures=failures,
                last_check_time=failure or success,
                last_success_time=success,
                last_failure_time=failure,
                error_message=error,
                item_count=1000 + len(name),
                updated_at=now,
            ),
        )


def bulk(*, failures=0, retries=0, runs=0, audit=0, health_changes=0, pauses=0, now=None, seed=1):
    """Create many rows fast (bulk_create), spread over the last 30 days. Successful runs that changed rows
    get history sequence numbers, as restore points do."""
    now = now or timezone.now()
    rng = random.Random(seed)

    def when():
        return now - timedelta(seconds=rng.randint(0, 30 * 86400))

    if runs:
        outcomes = ["success"] * 6 + ["failed", "rolled_back", "skipped"]
        made = []
        for i in range(runs):
            # The draws in the order of the original seeding, so seeded data stays the same.
            trigger = rng.choice(["schedule", "schedule", "manual", "retry"])
            started = when()
            outcome = rng.choice(outcomes)
            item_count, created, updated = rng.randint(50, 5000), rng.randint(0, 10), rng.randint(0, 50)
            made.append(
                SyncRun(
                    data_type=TYPES[i % 4],
                    trigger=trigger,
                    # A retry's runs name their item, as the processor's do.
                    triggered_by=f"retry #{i // 12 + 1}" if trigger == "retry" else "system",
                    started_at=started,
                    finished_at=started + timedelta(seconds=3),
                    outcome=outcome,
                    item_count=item_count,
                    # Only a successful run changes rows.
                    created=created if outcome == "success" else 0,
                    updated=updated if outcome == "success" else 0,
                    duration_ms=rng.randint(100, 90000),
                    error="HTTP 503 from Finale" if outcome == "failed" else "",
                    error_code="server_error" if outcome == "failed" else "",
                )
            )
        made.sort(key=lambda r: r.started_at)
        seqs = dict.fromkeys(TYPES, 0)
        for run in made:
            if run.outcome == "success":
                seqs[run.data_type] += 1 if run.created or run.updated else 0
                run.history_seq = seqs[run.data_type]
        SyncRun.objects.bulk_create(made, batch_size=2000)
    if failures:
        logs = []
        for i in range(failures):
            name = TYPES[i % 4]
            code, message, recoverable = rng.choice(FAILURE_KINDS)
            logs.append(
                FailureLog(
                    data_type=name,
                    error_message=message.format(name=name.replace("_", " ")),
                    error_code=code,
                    error_details={"retry_after": 30 * (1 + i % 4)} if code == "rate_limited" else {},
                    recoverable=recoverable,
                    trigger=rng.choice(["schedule", "schedule", "retry"]),
                    rolled_back=code in ("empty_data", "suspicious_drop"),
                    backup_available=True,
                    created_at=when(),
                )
            )
        FailureLog.objects.bulk_create(logs, batch_size=2000)
    if retries:
        closed = [RetryStatus.COMPLETED, RetryStatus.FAILED, RetryStatus.CANCELLED]
        items = []
        has_open = RetryItem.objects.filter(status__in=OPEN_STATUSES).exists()
        for i in range(retries):
            # One open item per type and operation at most (a database constraint).
            open_slot = i < 4 and not has_open
            created = when()
            items.append(
                RetryItem(
                    data_type=TYPES[i % 4],
                    status=RetryStatus.PENDING if open_slot else closed[i % 3],
                    retry_count=i % 3,
                    next_retry_at=created + timedelta(minutes=5),
                    last_error_message="HTTP 503 from Finale",
                    error_code="server_error",
                    created_at=created,
                    updated_at=created + timedelta(minutes=10),
                    completed_at=None if open_slot else created + timedelta(minutes=10),
                )
            )
        RetryItem.objects.bulk_create(items, batch_size=2000)
    if audit:
        AuditLog.objects.bulk_create(
            AuditLog(
                username="ops",
                source="dashboard",
                action="sync_now",
                target=TYPES[i % 4],
                data_type=TYPES[i % 4],
                outcome="queued",
                message="queued",
                created_at=when(),
            )
            for i in range(audit)
        )
    if health_changes:
        # Status changes of each type in turn, in time order (the history recording.py keeps).
        statuses = ["degraded", "healthy", "unhealthy", "healthy"]
        times = sorted(when() for _ in range(health_changes))
        HealthChange.objects.bulk_create(
            (
                HealthChange(
                    data_type=TYPES[i % 4],
                    at=moment,
                    status=statuses[(i // 4) % 4],
                    previous=statuses[(i // 4 - 1) % 4],
                )
                for i, moment in enumerate(times)
            ),
            batch_size=2000,
        )
    if pauses:
        # Pause, snooze and resume entries as the dashboard's buttons write them.
        kinds = [("pause", "{}"), ("snooze", "{} for 1 h"), ("resume", "{}")]
        AuditLog.objects.bulk_create(
            AuditLog(
                username="ops",
                source="dashboard",
                action=kinds[i % 3][0],
                target=kinds[i % 3][1].format(TYPES[i % 4]),
                data_type=TYPES[i % 4],
                outcome="success",
                message="done",
                created_at=when(),
            )
            for i in range(pauses)
        )
