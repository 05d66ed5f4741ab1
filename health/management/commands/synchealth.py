"""python manage.py synchealth [--json] — the system health; exit 0 healthy, 1 degraded, 2 unhealthy."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from health.system import get_sync_system_health


class Command(BaseCommand):
    help = "Show the health of every data type and the retry queue. Exit 0 healthy, 1 degraded, 2 unhealthy."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the /health/ JSON, nothing else")

    def handle(self, *args, json: bool = False, **options):
        health = get_sync_system_health()
        if json:
            self.stdout.write(_dumps(health.as_json()))
        else:
            self.print_table(health)
        if health.exit_code:
            sys.exit(health.exit_code)

    def print_table(self, health):
        from rich.console import Console
        from rich.table import Table

        colours = {"healthy": "green", "degraded": "yellow", "unhealthy": "red", "unknown": "dim"}
        table = Table(title=f"finalesync: system {health.status}", title_style=colours.get(health.status, ""))
        for col in ("type", "status", "grade", "stale", "items", "fails", "last success", "note"):
            table.add_column(col, justify="right" if col in ("items", "fails") else "left")
        for t in health.data_types:
            status = t.state if t.paused else t.effective_status
            table.add_row(
                t.data_type,
                f"[{colours.get(status, 'dim')}]{status}[/]",
                t.grade,
                "stale" if t.stale else "",
                f"{t.item_count:,}",
                str(t.consecutive_failures),
                f"{t.last_success_time:%Y-%m-%d %H:%M}" if t.last_success_time else "never",
                t.grade_reason + (f"\n{(t.error_message or '')[:200]}" if t.error_message else ""),
            )
        console = Console(file=self.stdout, width=160)
        console.print(table)
        queue = health.retry_queue
        age = health.oldest_pending_retry_age_seconds
        console.print(
            f"Retry queue: {queue['pending']} pending, {queue['processing']} processing, {queue['failed']} failed"
            + (f" (oldest pending {age / 60:.0f} min)" if age is not None else "")
            + f". Failures in 24 h: {health.failures_24h}."
            + (f" Last cycle: {health.last_cycle_at:%Y-%m-%d %H:%M:%S}." if health.last_cycle_at else "")
        )
        for note in health.notes:
            console.print(f"[yellow]{note}[/]")


def _dumps(data) -> str:
    return json.dumps(data)
