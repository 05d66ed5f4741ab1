"""Bringing a data type back to the state after an earlier run, from its row history.

A restore is a run of its own (trigger "restore") under the type's lock: the state at the chosen history seq
is staged, compared with the live rows and applied like a sync, writing its own versions, so it can be undone
by restoring the seq it replaced. The same step repairs the live rows automatically when a sync that refused
new data finds them damaged (finalesync/runs.py). Restores started from the dashboard or the admin run as
django-q2 tasks, never inside a web request.
"""

from __future__ import annotations

from . import history
from .datatypes import registry
from .errors import ConfigurationError
from .models import DataTypeConfig, SyncRun
from .runs import Run, RunResult


def restore(
    *,
    data_type: str,
    seq: int,
    user: str = "system",
    reason: str = "",
    run: SyncRun | None = None,
) -> RunResult:
    """Restore `data_type` to its state at history seq `seq` (see `history.restore_points`). `run` is the
    queued restore run a task picks up. Returns the run's result; a type being synced is skipped."""
    datatype = registry.get(data_type)
    config = DataTypeConfig.objects.get(data_type=data_type)
    details = {"reason": reason, "undo_seq": config.history_seq}
    if run is not None:
        SyncRun.objects.filter(pk=run.pk).update(details={**run.details, **details}, restore_seq=seq)
        run.details = {**run.details, **details}
    with Run(datatype, trigger=SyncRun.Trigger.RESTORE, user=user, run=run, details=details) as current:
        SyncRun.objects.filter(pk=current.run.pk).update(restore_seq=seq)
        if current.held:
            config = DataTypeConfig.objects.get(data_type=data_type)
            if not history.is_restorable(config, seq):
                raise ConfigurationError(
                    f"{data_type} cannot be restored to #{seq}: the history keeps #{max(config.history_floor, 1)} "
                    f"to #{config.history_seq}"
                )
            current.note(details={"undo_seq": config.history_seq})

            def on_rows(rows):
                current.heartbeat(rows)
                SyncRun.objects.filter(pk=current.run.pk).update(rows_done=rows)

            new_seq, diff = history.apply_state(
                datatype, seq=seq, lease=current.lease, run=current.run, on_rows=on_rows
            )
            current.succeed(seq=new_seq, item_count=diff.rows_after, diff=diff)
    return current.result


def restore_latest(*, data_type: str, user: str = "system") -> RunResult:
    """Put the live rows back to the state the last run left (the retry queue's "restore" operation, after
    an automatic repair failed on our own database)."""
    config = DataTypeConfig.objects.get(data_type=data_type)
    return restore(
        data_type=data_type, seq=config.history_seq, user=user, reason="retry of a failed automatic restore"
    )
