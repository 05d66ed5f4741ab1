"""python manage.py synchealth [--json] — the system health.

Exit status, as monitors expect: 0 healthy, 1 degraded, 2 unhealthy, 3 unknown (the database cannot be read:
one line on stderr, `{"status": "unknown", "error": ...}` with --json)."""

from __future__ import annotations

import json
import sys

from finalesync import texts
from finalesync.management.base import DatabaseCommand, database_problem
from health.system import get_sync_system_health


class Command(DatabaseCommand):
    help = (
        "Show the health of every data type and the retry queue. "
        "Exit 0 healthy, 1 degraded, 2 unhealthy, 3 unknown (the database cannot be read)."
    )
    unavailable_exit = 3

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the /health/ JSON, nothing else")

    def run(self, *args, json: bool = False, **options):
        health = get_sync_system_health()
        if json:
            self.stdout.write(_dumps(health.as_json()))
        else:
            self.print_table(health)
        if health.exit_code:
            sys.exit(health.exit_code)

    def database_unavailable(self, exc, options):
        problem = database_problem(exc)
        if options.get("json"):
            self.stdout.write(_dumps({"status": "unknown", "error": problem}))
        self.stderr.write(f"finalesync: health unknown: {problem}")

    def print_table(self, health):
        from rich.console import Console
        from rich.table import Table

        colours = {"ok": "green", "warn": "yellow", "bad": "red", "muted": "dim"}
        status_colours = {"healthy": "green", "degraded": "yellow", "unhealthy": "red", "unknown": "dim"}
        table = Table(
            title=f"finalesync: system {health.status}", title_style=status_colours.get(health.status, "")
        )
        for col in ("type", "grade", "items", "last success", "state", "next step"):
            table.add_column(col, justify="right" if col == "items" else "left")
        for t in health.data_types:
            table.add_row(
                t.data_type,
                t.grade,
                f"{t.item_count:,}",
                texts.ago(t.last_success_time, health.checked_at),
                f"[{colours.get(t.tone, '')}]{t.summary}[/]",
                t.next_step,
            )
        console = Console(file=self.stdout, width=180)
        console.print(table)
        queue = health.retry_queue
        age = health.oldest_pending_retry_age_seconds
        console.print(
            f"Retry queue: {queue['pending']} pending, {queue['processing']} processing, {queue['failed']} failed"
            + (f" (oldest pending {texts.duration(age)})" if age is not None else "")
            + f". Failures in 24 h: {health.failures_24h}."
            + (
                f" Last cycle: {texts.clock(health.last_cycle_at, health.checked_at)}."
                if health.last_cycle_at
                else ""
            )
        )
        for note in health.notes:
            console.print(f"[yellow]{note}[/]")


def _dumps(data) -> str:
    return json.dumps(data)
