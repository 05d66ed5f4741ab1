"""python manage.py processretries [--json] — one run of the retry processor."""

import json

from finalesync.management.base import DatabaseCommand
from retries.queue import process_retries


class Command(DatabaseCommand):
    help = "Run the retry processor once: reclaim dead workers' items, then work at most --limit due retries."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--limit", type=int, default=None, help="items per run (default RETRY_BATCH_SIZE)"
        )

    def run(self, *args, json: bool = False, limit=None, **options):
        report = process_retries(limit=limit)
        if json:
            self.stdout.write(_dumps(report.as_json()))
            return
        if report.reclaimed:
            self.stdout.write(f"Reclaimed {report.reclaimed} item(s) from workers that stopped.")
        if not report.processed:
            self.stdout.write("No retries due.")
        for row in report.processed:
            line = f"#{row['id']} {row['operation']} {row['data_type']}: {row['outcome']} → {row['status']}"
            if row["error"]:
                line += f" ({row['error']})"
            self.stdout.write(line)


def _dumps(data) -> str:
    return json.dumps(data)
