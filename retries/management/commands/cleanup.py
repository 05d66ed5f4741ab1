"""python manage.py cleanup [--json] — remove what is past its retention (the daily 'cleanup' schedule)."""

import json

from django.core.management.base import BaseCommand

from retries.cleanup import run_cleanup


class Command(BaseCommand):
    help = "Delete finished retries, old failure logs and sync runs, and backups past their retention."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, json: bool = False, **options):
        removed = run_cleanup()
        if json:
            self.stdout.write(_dumps(removed))
        else:
            self.stdout.write(
                "Removed: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in removed.items())
            )


def _dumps(data) -> str:
    return json.dumps(data)
