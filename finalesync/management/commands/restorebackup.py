"""python manage.py restorebackup --list [TYPE] | RUN --reason TEXT [--pause] [--yes]

Brings a data type back to the state it had after sync run RUN (from its row history). The restore is a run of
its own and can be undone by restoring the point it replaced; `--list` shows what can be restored."""

from __future__ import annotations

import sys

from django.core.management.base import CommandError

from finalesync import history, texts
from finalesync.audit import ActionRefused, Actor
from finalesync.datatypes import registry
from finalesync.management.base import DatabaseCommand


class Command(DatabaseCommand):
    help = "Restore a data type to the state after an earlier sync run (--list shows the restorable runs)."

    def add_arguments(self, parser):
        parser.add_argument("run", nargs="?", type=int, help="the sync run whose resulting state to restore")
        parser.add_argument(
            "--list", nargs="?", const="", metavar="TYPE", help="list restorable runs (of TYPE)"
        )
        parser.add_argument("--reason", default="", help="why (required; kept in the audit log)")
        parser.add_argument(
            "--pause", action="store_true", help="pause the type so the schedule keeps the restored rows"
        )
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--user", default="cli", help="name recorded in the audit log")

    def run(self, *args, run, list, reason, pause, yes, user, **options):
        if list is not None:
            return self.list_points(list or None)
        if run is None:
            raise CommandError("name a sync run (restorebackup RUN --reason TEXT) or use --list [TYPE]")
        from finalesync.actions import preview_restore, restore_now

        try:
            preview = preview_restore(run_id=run)
        except ActionRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Restore {preview.data_type} to the state after run #{run} ({texts.clock(preview.run.started_at)}): "
            f"{preview.live_rows:,} live rows → {preview.rows_after:,}; {preview.would_create:,} to add, "
            f"{preview.would_update:,} to change, {preview.would_delete:,} to remove."
        )
        if not pause:
            self.stdout.write(
                "Note: the next scheduled sync brings Finale's data back over the restored rows; add --pause to "
                "pause the type until you resume it."
            )
        if not yes and preview.changes:
            if not sys.stdin.isatty():
                raise CommandError("not a terminal: add --yes to restore without asking")
            if input("Restore? [y/N] ").strip().lower() not in ("y", "yes"):
                raise CommandError("not restored")
        try:
            result = restore_now(run_id=run, actor=Actor.named(user), reason=reason, pause_type=pause)
        except ActionRefused as exc:
            raise CommandError(str(exc)) from None
        undo = result.details.get("undo_seq")
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {preview.data_type} as run #{result.run_id}: {result.item_count:,} rows "
                f"({result.created:,} added, {result.updated:,} changed, {result.deleted:,} removed)."
            )
        )
        writer = history.writers(preview.data_type, [undo]).get(undo) if undo else None
        if writer is not None:
            self.stdout.write(
                f"To undo: python manage.py restorebackup {writer.pk} --reason 'undo restore run #{result.run_id}'"
            )

    def list_points(self, data_type: str | None) -> None:
        names = [data_type] if data_type else registry.NAMES
        for name in names:
            if name not in registry.DATATYPES:
                raise CommandError(f"unknown data type {name!r}; known: {', '.join(registry.NAMES)}")
            points = history.restore_points(name)
            self.stdout.write(f"{name}: {len(points)} restorable point(s)")
            for point in points:
                self.stdout.write(
                    f"  run #{point.pk:<8} {texts.clock(point.started_at):<22} {point.get_trigger_display():<15} "
                    f"{point.item_count:>10,} rows  +{point.created:,} ~{point.updated:,} -{point.deleted:,}"
                )
