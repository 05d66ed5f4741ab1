"""python manage.py restorebackup ID [--user NAME] [--reason TEXT]"""

from django.core.management.base import BaseCommand, CommandError

from finalesync.actions import ActionRefused, Actor, restore_backup
from finalesync.models import SyncRun


class Command(BaseCommand):
    help = "Restore a data type's rows to a backup (the current rows are backed up first)."

    def add_arguments(self, parser):
        parser.add_argument("backup_id", type=int)
        parser.add_argument("--user", default="cli", help="name recorded in the audit log")
        parser.add_argument("--reason", default="", help="why, recorded in the audit log")

    def handle(self, *args, backup_id, user, reason, **options):
        try:
            message = restore_backup(backup_id=backup_id, actor=Actor.named(user), reason=reason)
        except ActionRefused as exc:
            raise CommandError(f"{exc}; list the backups in the admin or on the dashboard") from None
        run = (
            SyncRun.objects.filter(trigger=SyncRun.Trigger.RESTORE, details__restore_of_backup=backup_id)
            .order_by("-started_at", "-id")
            .first()
        )
        undo = run.details.get("undo_backup") if run else None
        hint = (
            f"\nTo undo: python manage.py restorebackup {undo}" if undo else "\nThe table was empty before."
        )
        self.stdout.write(self.style.SUCCESS(message) + hint)
