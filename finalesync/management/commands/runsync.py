"""python manage.py runsync [TYPE ...] [--force] [--confirm] [--json]"""

from __future__ import annotations

import json
import sys

from django.core.management.base import CommandError
from django.utils import timezone

from finalesync import audit
from finalesync.datatypes import registry
from finalesync.errors import advice_for
from finalesync.management.base import DatabaseCommand
from finalesync.models import ORDINARY_SKIPS, AuditLog, ScheduleState, SyncRun
from finalesync.runs import RunResult
from finalesync.safety import Confirmation
from finalesync.sync import Progress, ensure_configs, sync_data_type


class RichProgress(Progress):
    """Rows fetched and rows applied, as a bar per type on a terminal (stderr, so stdout stays clean)."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn
        from rich.progress import Progress as Bars

        self.bars = Bars(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            console=console,
            transient=True,
        )
        self.tasks = {}

    def __enter__(self):
        self.bars.start()
        return self

    def __exit__(self, *exc):
        self.bars.stop()

    def _task(self, data_type):
        if data_type not in self.tasks:
            self.tasks[data_type] = self.bars.add_task(f"{data_type}: fetching", total=None)
        return self.tasks[data_type]

    def fetched(self, data_type, rows):
        self.bars.update(self._task(data_type), completed=rows, description=f"{data_type}: fetching")

    def applying(self, data_type, rows):
        self.bars.update(
            self._task(data_type), total=rows, completed=rows, description=f"{data_type}: applying"
        )

    def done(self, data_type):
        if data_type in self.tasks:
            self.bars.remove_task(self.tasks.pop(data_type))


class Command(DatabaseCommand):
    help = (
        "Sync data types from Finale now. Default: every type that is due. Exit 0 when every type succeeded "
        "or was skipped for an ordinary reason (not due, paused, snoozed), 1 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("types", nargs="*", metavar="TYPE", help=f"one of: {', '.join(registry.NAMES)}")
        parser.add_argument(
            "--force",
            action="store_true",
            help="run the named types now: due or not, paused or waiting for a person (the data checks still apply)",
        )
        parser.add_argument(
            "--confirm",
            action="store_true",
            help="a person accepts, for this run only, what the data checks find suspicious (a large drop, an "
            "emptied column, a mass change); implies --force; never accepts empty or unreadable data",
        )
        parser.add_argument(
            "--json", action="store_true", help="print one JSON object per type, nothing else"
        )
        parser.add_argument("--user", default="cli", help="name recorded as who triggered the run")

    def run(self, *args, types, force, confirm, json: bool, user, **options):
        unknown = [t for t in types if t not in registry.DATATYPES]
        if unknown:
            raise CommandError(
                f"unknown data type(s): {', '.join(unknown)}; known: {', '.join(registry.NAMES)}"
            )
        if confirm and not types:
            raise CommandError("--confirm applies to the types you name: runsync TYPE --confirm")
        force = force or confirm
        configs = ensure_configs()
        now = timezone.now()
        names = types or registry.NAMES
        results: list[RunResult] = []
        console = None
        if not json:
            from rich.console import Console

            console = Console(stderr=True)
        progress = RichProgress(console) if console is not None and console.is_terminal else None
        waiting = []
        try:
            if progress:
                progress.__enter__()
            for name in names:
                config = configs[name]
                state, reason = config.schedule(now)
                if not force and reason != "due":
                    if state not in ORDINARY_SKIPS:
                        waiting.append(name)
                    if config.last_skip_reason != reason:
                        type(config).objects.filter(pk=config.pk).update(
                            last_skip_reason=reason[:200], last_skipped_at=now
                        )
                    results.append(skipped(name, reason, state, config))
                    continue
                results.append(
                    sync_data_type(
                        data_type=name,
                        trigger=SyncRun.Trigger.CLI,
                        force=force,
                        confirm=Confirmation(by=user) if confirm else None,
                        user=user,
                        progress=progress,
                    )
                )
        finally:
            if progress:
                progress.__exit__(None, None, None)
        if force:
            # A person ran these types on purpose: that is worth an audit entry. A plain run (cron, a
            # habit) is like the schedule: its outcomes are in the sync runs, its skips on the data types.
            audit_runs(results, user=user, confirm=confirm)
        if json:
            for result in results:
                self.stdout.write(_json(result.as_json()))
        else:
            self.print_table(results)
        # Waiting for a person is an ordinary skip among others, but a run in which every type waits did
        # nothing at all: a monitor must hear about it.
        if not all(r.ok for r in results) or (results and len(waiting) == len(results)):
            sys.exit(1)

    def print_table(self, results):
        from rich.console import Console
        from rich.table import Table

        table = Table(title="finalesync: sync results")
        for col in ("type", "outcome", "items", "created", "updated", "deleted", "unchanged", "ms", "note"):
            table.add_column(col, justify="right" if col not in ("type", "outcome", "note") else "left")
        colours = {"success": "green", "skipped": "dim", "rolled_back": "yellow", "failed": "red"}
        for r in results:
            note = r.error or r.skip_reason or ""
            advice = r.as_json()["advice"]
            if advice and r.error:
                note += f"\n→ {advice}"
            table.add_row(
                r.data_type,
                f"[{colours.get(r.outcome, '')}]{r.outcome}[/]",
                f"{r.item_count:,}",
                f"{r.created:,}",
                f"{r.updated:,}",
                f"{r.deleted:,}",
                f"{r.unchanged:,}",
                f"{r.duration_ms:,}",
                note,
            )
        Console(file=self.stdout, width=160).print(table)


def audit_runs(results, *, user: str, confirm: bool) -> None:
    """A person ran this command on purpose: record each type's outcome in the audit log."""
    actor = audit.Actor.named(user)
    for r in results:
        outcome = {"success": "success", "skipped": "refused"}.get(str(r.outcome), "failed")
        audit.record(
            actor=actor,
            action=AuditLog.Action.CONFIRM_SYNC if confirm else AuditLog.Action.SYNC_NOW,
            target=r.data_type + (" (confirmed)" if confirm else " (forced)"),
            outcome=outcome,
            message=f"{r.outcome}: {r.item_count:,} rows"
            + (f"; {r.error or r.skip_reason}" if r.error or r.skip_reason else ""),
            data_type=r.data_type,
        )


def skipped(name: str, reason: str, state: str, config) -> RunResult:
    return RunResult(
        data_type=name,
        outcome=SyncRun.Outcome.SKIPPED,
        trigger=SyncRun.Trigger.CLI,
        skip_reason=reason,
        advice=skip_advice(name, state, config),
    )


def skip_advice(name: str, state: str, config) -> str | None:
    """What a person can do about a type the schedule leaves alone (None when it is simply not due)."""
    once = f"`runsync {name} --force` runs it once now"
    if state == ScheduleState.WAITING:
        fix = (
            advice_for(config.attention_code)
            if config.attention_code
            else "Fix the cause of its last failure."
        )
        return f"{fix} Then resume it on the dashboard, or {once}."
    return {
        ScheduleState.PAUSED: f"Resume it on the dashboard or in the admin; {once}.",
        ScheduleState.SNOOZED: f"It syncs again when the snooze ends; {once}.",
        ScheduleState.HELD: f"Its retry (or Finale's Retry-After) goes first; {once}.",
        ScheduleState.DISABLED: "Enable it in the admin (Data types).",
    }.get(state)


def _json(data) -> str:
    return json.dumps(data, sort_keys=False)
