"""Issue 9: Finale's host is no longer stored (only FINALE_BASE_URL in the environment), the API key is
encrypted like the secret, and every stored secret is re-encrypted under FINALESYNC_ENCRYPTION_KEY (earlier
versions derived the key from SECRET_KEY; those values are read once here, with that derived key)."""

from cryptography.fernet import InvalidToken
from django.db import migrations

import finalesync.crypto


def encrypt_stored_secrets(apps, schema_editor):
    connection = apps.get_model("finalesync", "FinaleConnection")
    config = apps.get_model("finalesync", "DataTypeConfig")
    columns = finalesync.crypto.encrypted_columns([connection, config])
    for column in columns:
        column.plaintext_before = column.label == "finalesync_finaleconnection.api_key"
    report = finalesync.crypto.reencrypt_columns(
        schema_editor.connection, columns, legacy=finalesync.crypto.legacy_fernets()
    )
    warn_unreadable(report)


def warn_unreadable(report):
    if report.unreadable:
        where = ", ".join(f"{label} #{pk}" for label, pk in report.unreadable)
        print(
            f"\n  {len(report.unreadable)} stored secret(s) could not be decrypted and were left as they were "
            f"({where}): enter them again in the admin, or run `manage.py rotatekeys` with the old SECRET_KEY "
            "in SECRET_KEY_FALLBACKS."
        )


def decrypt_api_key(apps, schema_editor):
    """Back to 0006's plain-text API key (the other secrets stay encrypted under the current key)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, api_key FROM finalesync_finaleconnection WHERE api_key <> ''")
        for pk, token in cursor.fetchall():
            try:
                plain = finalesync.crypto.decrypt(token)
            except InvalidToken:
                plain = ""
            cursor.execute("UPDATE finalesync_finaleconnection SET api_key = %s WHERE id = %s", [plain, pk])


class Migration(migrations.Migration):
    dependencies = [
        ("finalesync", "0006_source_hash"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="finaleconnection",
            name="base_url",
        ),
        migrations.AlterField(
            model_name="finaleconnection",
            name="api_key",
            field=finalesync.crypto.EncryptedTextField(blank=True),
        ),
        migrations.RunPython(encrypt_stored_secrets, decrypt_api_key, elidable=False),
    ]
