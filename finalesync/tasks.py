"""django-q2 task entry points of the engine. Thin: each calls the same function as the matching command."""

from __future__ import annotations

from django.utils import timezone

from .models import SyncRun


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
    data_type: str,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    force: bool = False,
    user: str = "system",
    confirm_run: int | None = None,
) -> dict:
    """One sync. `confirm_run` is the refused run whose evidence a person reviewed and accepted."""
    from .safety import Confirmation
    from .sync import sync_data_type

    confirm = None
    if confirm_run is not None:
        refused = SyncRun.objects.get(pk=confirm_run)
        confirm = Confirmation.from_evidence(refused.details.get("evidence", {}), by=user)
    return sync_data_type(
        data_type=data_type, trigger=trigger, force=force, confirm=confirm, user=user
    ).as_json()


def restore_type(run_id: int) -> dict:
    """A queued restore (the dashboard's or the admin's): its run row says which type, which point and who."""
    from .restore import restore

    run = SyncRun.objects.get(pk=run_id)
    return restore(
        data_type=run.data_type,
        seq=run.restore_seq,
        user=run.triggered_by,
        reason=run.details.get("reason", ""),
        run=run,
    ).as_json()
