"""Issue 9: webhook URLs and signing secrets re-encrypted under FINALESYNC_ENCRYPTION_KEY (earlier versions
derived the key from SECRET_KEY; those values are read once here, with that derived key)."""

from django.db import migrations

import finalesync.crypto


def encrypt_stored_secrets(apps, schema_editor):
    columns = finalesync.crypto.encrypted_columns([apps.get_model("health", "AlertChannel")])
    report = finalesync.crypto.reencrypt_columns(
        schema_editor.connection, columns, legacy=finalesync.crypto.legacy_fernets()
    )
    if report.unreadable:
        where = ", ".join(f"{label} #{pk}" for label, pk in report.unreadable)
        print(
            f"\n  {len(report.unreadable)} alert channel secret(s) could not be decrypted and were left as "
            f"they were ({where}): enter them again in the admin."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("health", "0002_alerts"),
    ]

    operations = [
        migrations.RunPython(encrypt_stored_secrets, migrations.RunPython.noop, elidable=False),
    ]
