"""python manage.py syncchanges RUN [--key TEXT] [--json] | --history TYPE KEY

What one sync run created, changed (old → new, changed columns only) and deleted; or one key's history."""

from __future__ import annotations

import json

from django.core.management.base import CommandError

from finalesync import history, texts
from finalesync.datatypes import registry
from finalesync.management.base import DatabaseCommand
from finalesync.models import SyncRun


class Command(DatabaseCommand):
    help = "Show the rows a sync run created, changed and deleted (or, with --history, one key's versions)."

    def add_arguments(self, parser):
        parser.add_argument("run", nargs="?", type=int, help="a sync run id")
        parser.add_argument("--key", default="", help="only keys containing this text")
        parser.add_argument(
            "--history", nargs=2, dest="key_of", metavar=("TYPE", "KEY"), help="every kept version of one key"
        )
        parser.add_argument("--json", action="store_true", help="print JSON, nothing else")

    def run(self, *args, run, key, key_of: list | None, json: bool, **options):
        if key_of:
            return self.key_history(*key_of, as_json=json)
        if run is None:
            raise CommandError("name a sync run: syncchanges RUN [--key TEXT] [--json]")
        sync_run = SyncRun.objects.filter(pk=run).first()
        if sync_run is None:
            raise CommandError(f"there is no sync run #{run}")
        seq = history.run_seq(sync_run)
        rows, total = (
            ([], 0) if seq is None else history.changes(sync_run.data_type, seq=seq, search=key, limit=None)
        )
        if json:
            self.stdout.write(
                _dumps(
                    {
                        "run": sync_run.pk,
                        "data_type": sync_run.data_type,
                        "seq": seq,
                        "created": sum(1 for c in rows if c.kind == "created"),
                        "updated": sum(1 for c in rows if c.kind == "updated"),
                        "deleted": sum(1 for c in rows if c.kind == "deleted"),
                        "changes": [c.as_json() for c in rows],
                    }
                )
            )
            return
        if seq is None:
            self.stdout.write(f"Run #{run} ({sync_run.data_type}, {sync_run.outcome}) changed no rows.")
            return
        self.stdout.write(
            f"Run #{run} ({sync_run.data_type}, {texts.clock(sync_run.started_at)}): {total:,} rows changed"
        )
        for change in rows:
            if change.kind == "updated":
                detail = "; ".join(f"{c}: {change.before[c]!r} → {change.after[c]!r}" for c in change.changed)
            else:
                detail = ""
            self.stdout.write(f"  {change.kind:<8} {change.key}  {detail}")

    def key_history(self, data_type: str, key: str, *, as_json: bool) -> None:
        if data_type not in registry.DATATYPES:
            raise CommandError(f"unknown data type {data_type!r}; known: {', '.join(registry.NAMES)}")
        versions = history.key_history(data_type, key)
        if as_json:
            self.stdout.write(
                _dumps(
                    [
                        {
                            "seq": v["seq"],
                            "run": v["run"].pk if v["run"] else None,
                            "at": v["run"].started_at.isoformat() if v["run"] else None,
                            "kind": v["kind"],
                            "changed": v["changed"],
                            "values": {k: history.jsonable(x) for k, x in v["values"].items()},
                        }
                        for v in versions
                    ]
                )
            )
            return
        if not versions:
            self.stdout.write(f"No history of {data_type} key {key!r}.")
        for v in versions:
            when = texts.clock(v["run"].started_at) if v["run"] else "?"
            run = f"run #{v['run'].pk}" if v["run"] else "run ?"
            self.stdout.write(f"  {when:<22} {run:<12} {v['kind']:<8} {', '.join(v['changed'])}")


def _dumps(data) -> str:
    return json.dumps(data, default=str)
