"""python manage.py restorebackup ID"""

from django.core.management.base import BaseCommand, CommandError

from retries.models import Backup
from retries.restore import restore_backup


class Command(BaseCommand):
    help = "Restore a data type's rows to a backup (the current rows are backed up first)."

    def add_arguments(self, parser):
        parser.add_argument("backup_id", type=int)
        parser.add_argument("--user", default="cli")
        parser.add_argument("--reason", default="")

    def handle(self, *args, backup_id, user, reason, **options):
        try:
            run = restore_backup(backup_id=backup_id, user=user, reason=reason)
        except Backup.DoesNotExist:
            raise CommandError(
                f"no backup #{backup_id}; list them in the admin or with the dashboard"
            ) from None
        if run.outcome != "success":
            raise CommandError(
                f"restore of backup #{backup_id} {run.outcome}: {run.error or run.skip_reason}"
            )
        undo = run.details.get("undo_backup")
        undo_hint = (
            f"To undo: python manage.py restorebackup {undo}" if undo else "The table was empty before."
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {run.data_type} to backup #{backup_id}: {run.item_count:,} rows "
                f"({run.created} created, {run.updated} updated, {run.deleted} deleted). {undo_hint}"
            )
        )
