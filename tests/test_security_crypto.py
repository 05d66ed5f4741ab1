"""Secrets at rest (issue 9): FINALESYNC_ENCRYPTION_KEY is a list of keys (first encrypts, all decrypt),
`rotatekeys` moves every stored secret to the first key, and the upgrade migration reads the values earlier
versions encrypted with a key derived from SECRET_KEY."""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from finalesync import crypto
from finalesync.models import DataTypeConfig, FinaleConnection
from finalesync.sync import ensure_configs
from health.models import AlertChannel

pytestmark = pytest.mark.django_db
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SECRET, HOOK, REPORT = (
    "api-secret-Tq61",
    "https://hooks.slack.com/services/T1/B1/hook-Yw20",
    "https://r/1?t=Rp44",
)
upgrade = importlib.import_module("finalesync.migrations.0007_encrypted_api_key")
upgrade_alerts = importlib.import_module("health.migrations.0003_reencrypt_alert_secrets")


def raw(table: str, column: str, pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def write_raw(table: str, column: str, pk, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, pk])


def store_secrets():
    FinaleConnection.objects.create(pk=1, account="acme", api_key="key-Hn35", api_secret=SECRET)
    channel = AlertChannel.objects.create(name="slack", kind="slack", url=HOOK, signing_secret="sign-Pc88")
    config = ensure_configs()["boms"]
    config.report_url = REPORT
    config.save(update_fields=["report_url"])
    return channel, config


def stored_values(channel, config):
    conn = FinaleConnection.objects.get()
    channel.refresh_from_db()
    config = DataTypeConfig.objects.get(pk=config.pk)
    return (conn.api_key, conn.api_secret, channel.url, channel.signing_secret, config.report_url)


EXPECTED = ("key-Hn35", SECRET, HOOK, "sign-Pc88", REPORT)


def test_the_first_key_encrypts_and_every_key_decrypts(settings):
    settings.FINALESYNC_ENCRYPTION_KEY = OLD
    token = crypto.encrypt(SECRET)
    settings.FINALESYNC_ENCRYPTION_KEY = f"{NEW}, {OLD}"
    assert crypto.decrypt(token) == SECRET
    assert Fernet(NEW.encode()).decrypt(crypto.encrypt(SECRET).encode()).decode() == SECRET


def test_rotatekeys_moves_every_stored_secret_to_the_new_key(settings):
    settings.FINALESYNC_ENCRYPTION_KEY = OLD
    channel, config = store_secrets()
    before = raw("finalesync_finaleconnection", "api_secret", 1)
    assert SECRET not in before

    settings.FINALESYNC_ENCRYPTION_KEY = f"{NEW},{OLD}"  # step 1: the new key in front
    out = StringIO()
    call_command("rotatekeys", stdout=out)  # step 2
    assert "finalesync_finaleconnection.api_secret: 1 re-encrypted" in out.getvalue()
    assert "health_alertchannel.url: 1 re-encrypted" in out.getvalue()
    settings.FINALESYNC_ENCRYPTION_KEY = NEW  # step 3: the old key dropped
    assert stored_values(channel, config) == EXPECTED
    assert Fernet(NEW.encode()).decrypt(raw("finalesync_finaleconnection", "api_secret", 1).encode())


def test_rotatekeys_refuses_to_bless_values_no_key_can_read(settings):
    settings.FINALESYNC_ENCRYPTION_KEY = OLD
    store_secrets()
    settings.FINALESYNC_ENCRYPTION_KEY = NEW  # the old key dropped too early
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("rotatekeys", stdout=StringIO())
    settings.FINALESYNC_ENCRYPTION_KEY = f"{NEW},{OLD}"
    assert FinaleConnection.objects.get().api_secret == SECRET  # left as it was: still recoverable


def test_the_upgrade_reads_values_encrypted_with_the_key_derived_from_secret_key(settings):
    """What an install of the previous version holds: an API key in clear, the other secrets under the key
    derived from its SECRET_KEY (the public development default here, the worst case)."""
    channel, config = store_secrets()
    legacy = crypto._derived(crypto.DEVELOPMENT_SECRET_KEY)
    write_raw("finalesync_finaleconnection", "api_key", 1, "key-Hn35")
    write_raw("finalesync_finaleconnection", "api_secret", 1, legacy.encrypt(SECRET.encode()).decode())
    write_raw("finalesync_datatypeconfig", "report_url", config.pk, legacy.encrypt(REPORT.encode()).decode())
    write_raw("health_alertchannel", "url", channel.pk, legacy.encrypt(HOOK.encode()).decode())
    write_raw("health_alertchannel", "signing_secret", channel.pk, legacy.encrypt(b"sign-Pc88").decode())
    assert FinaleConnection.objects.get().api_secret == ""  # unreadable with the new key before the upgrade

    upgrade.encrypt_stored_secrets(apps, connection.schema_editor())
    upgrade_alerts.encrypt_stored_secrets(apps, connection.schema_editor())

    assert stored_values(channel, config) == EXPECTED
    assert "key-Hn35" not in raw("finalesync_finaleconnection", "api_key", 1)
    for value in (
        raw("finalesync_finaleconnection", "api_secret", 1),
        raw("health_alertchannel", "url", channel.pk),
    ):
        Fernet(settings.FINALESYNC_ENCRYPTION_KEY.split(",")[0].encode()).decrypt(value.encode())
    # Run twice (a migration re-applied after a failure): nothing changes meaning.
    upgrade.encrypt_stored_secrets(apps, connection.schema_editor())
    assert stored_values(channel, config) == EXPECTED
