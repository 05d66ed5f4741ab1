"""python manage.py cleanup [--json] — remove what is past its retention (the daily 'cleanup' schedule)."""

import json

from finalesync.management.base import DatabaseCommand
from retries.cleanup import run_cleanup


class Command(DatabaseCommand):
    help = "Delete finished retries, old failure logs and sync runs, and row history past its retention."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def run(self, *args, json: bool = False, **options):
        removed = run_cleanup()
        if json:
            self.stdout.write(_dumps(removed))
        else:
            self.stdout.write(
                "Removed: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in removed.items())
            )


def _dumps(data) -> str:
    return json.dumps(data)
