"""python manage.py rotatekeys [--dry-run]

Key rotation: with a new key in front of FINALESYNC_ENCRYPTION_KEY (the old ones still after it), re-encrypt
every stored secret under the new key. Afterwards the old keys can be dropped. Exit 1 while any stored value
cannot be read with the configured keys: dropping a key then would lose it.
"""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from finalesync.crypto import encrypted_columns, legacy_fernets, reencrypt_columns


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the first key of FINALESYNC_ENCRYPTION_KEY."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")

    def handle(self, *args, dry_run, **options):
        columns = encrypted_columns(apps.get_models())
        with transaction.atomic():
            report = reencrypt_columns(connection, columns, legacy=legacy_fernets(), dry_run=dry_run)
        verb = "would be re-encrypted" if dry_run else "re-encrypted under the first key"
        for col in columns:
            done = sum(report.counts[(col.label, o)] for o in ("rotated", "upgraded", "encrypted"))
            self.stdout.write(f"{col.label}: {done} {verb}")
        if report.unreadable:
            where = ", ".join(f"{label} #{pk}" for label, pk in report.unreadable)
            raise CommandError(
                f"{len(report.unreadable)} stored value(s) cannot be decrypted with any key in "
                f"FINALESYNC_ENCRYPTION_KEY ({where}). Put the key that encrypted them back into the list and "
                "run rotatekeys again, or enter those values again in the admin. Do not drop a key before "
                "this command reports none."
            )
        if not dry_run:
            self.stdout.write(
                self.style.SUCCESS(
                    "Every stored secret is now encrypted under the first key; older keys may go."
                )
            )
