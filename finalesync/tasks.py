"""django-q2 task entry points. Thin: each calls the same function as the matching command."""

from __future__ import annotations

import logging

from django.utils import timezone

from .models import SyncRun

log = logging.getLogger("finalesync.tasks")


def sync_cycle() -> list[str]:
    """The 'auto-sync-finale' schedule: queue a task for each type that is due and allowed to run."""
    from django_q.tasks import async_task

    from .cycle import due_types

    queued = []
    for name in due_types(now=timezone.now()):
        async_task(
            "finalesync.tasks.sync_type",
            name,
            SyncRun.Trigger.SCHEDULE,
            task_name=f"sync {name}",
            group="sync",
        )
        queued.append(name)
    return queued


def sync_type(
    data_type: str, trigger: str = SyncRun.Trigger.SCHEDULE, force: bool = False, user: str = "system"
) -> dict:
    from .sync import sync_data_type

    return sync_data_type(data_type=data_type, trigger=trigger, force=force, user=user).as_json()


def process_retries() -> dict:
    """The 'process-sync-retries' schedule: the retry processor, then alert reminders and the sweep that
    delivers pending notifications (their own retries)."""
    from health.alerts import send_reminders
    from health.notify import deliver_due
    from retries.queue import process_retries as run

    report = run().as_json()
    report["reminders"] = len(send_reminders())
    report["notifications"] = deliver_due()
    return report


def cleanup() -> dict:
    """The daily 'cleanup' schedule."""
    from retries.cleanup import run_cleanup

    return run_cleanup()
