"""Encryption at rest for secrets stored in the database (Fernet: AES-128-CBC + HMAC-SHA256).

The keys are FINALESYNC_ENCRYPTION_KEY: one Fernet key, or several separated by commas. The first encrypts,
every one decrypts (MultiFernet), which is how a key is rotated: put a new key in front, run
`manage.py rotatekeys` (every stored secret is re-encrypted under it), then drop the old key.

Earlier versions derived the key from SECRET_KEY. Such values are read only by the upgrade migration and by
`rotatekeys` (`legacy_fernets`), never in normal operation: with the database file and a guessable
SECRET_KEY they would decrypt.
"""

from __future__ import annotations

import base64
import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

# The SECRET_KEY default of earlier versions: values encrypted under a key derived from it may still exist.
DEVELOPMENT_SECRET_KEY = "insecure-dev-only-change-me-finalesync"


def key_list(value: str | Sequence[str]) -> list[str]:
    """The keys of a FINALESYNC_ENCRYPTION_KEY value: a comma-separated string or a list, blanks dropped."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return [k.strip() for k in items if k and k.strip()]


@functools.cache
def _multi(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def fernet() -> MultiFernet:
    keys = key_list(settings.FINALESYNC_ENCRYPTION_KEY)
    if not keys:
        raise ImproperlyConfigured("FINALESYNC_ENCRYPTION_KEY is not set: stored secrets cannot be read.")
    return _multi(tuple(keys))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    """Return the plaintext; raises InvalidToken when none of the keys encrypted it."""
    return fernet().decrypt(token.encode()).decode() if token else ""


def legacy_fernets() -> list[Fernet]:
    """The keys earlier versions derived from SECRET_KEY (the current one, SECRET_KEY_FALLBACKS, and the old
    public development default). Only for reading values stored before FINALESYNC_ENCRYPTION_KEY existed."""
    sources = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", []), DEVELOPMENT_SECRET_KEY]
    return [_derived(s) for s in dict.fromkeys(s for s in sources if s)]


@functools.cache
def _derived(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"finalesync", info=b"secrets-at-rest").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


class EncryptedTextField(models.TextField):
    """A text field stored as a Fernet token. Python code sees plaintext; the database never does."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return decrypt(value)
        except InvalidToken:
            # A key dropped too early must not crash every page: the value reads as unset, the admin offers
            # to enter it again, and `rotatekeys` lists it.
            return ""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value


# --- re-encryption (the upgrade migration and `manage.py rotatekeys`) -----------------------------------------
@dataclass
class Column:
    """One encrypted column: where it is and how its values were stored before."""

    table: str
    pk: str
    column: str
    plaintext_before: bool = False  # stored in clear by earlier versions (the API key)

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass
class Report:
    counts: Counter = field(default_factory=Counter)  # (label, outcome) -> values
    unreadable: list[tuple[str, object]] = field(default_factory=list)  # (label, pk)


def encrypted_columns(model_classes: Iterable[type[models.Model]]) -> list[Column]:
    """Every EncryptedTextField of `model_classes` (live or historical models)."""
    return [
        Column(model._meta.db_table, model._meta.pk.column, f.column)
        for model in model_classes
        for f in model._meta.concrete_fields
        if isinstance(f, EncryptedTextField)
    ]


def reencrypt_token(value: str, *, legacy: Sequence[Fernet] = (), plaintext_before: bool = False):
    """(new stored value, outcome) for one stored value, outcome one of: "rotated" (now under the first key),
    "upgraded" (read with a legacy key), "encrypted" (was plain text), "unreadable" (left as it was)."""
    current = fernet()
    try:
        return current.rotate(value.encode()).decode(), "rotated"
    except InvalidToken:
        pass
    for old in legacy:
        try:
            return current.encrypt(old.decrypt(value.encode())).decode(), "upgraded"
        except InvalidToken:
            continue
    if plaintext_before:
        return current.encrypt(value.encode()).decode(), "encrypted"
    return value, "unreadable"


def reencrypt_columns(
    connection, columns: Sequence[Column], *, legacy: Sequence[Fernet] = (), dry_run: bool = False
) -> Report:
    """Re-encrypt every non-empty value of `columns` under the first key. Each row is updated only if it still
    holds the value read (a concurrent edit in the admin wins). Unreadable values are left alone."""
    report = Report()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for col in columns:
            table, pk, column = quote(col.table), quote(col.pk), quote(col.column)
            cursor.execute(f"SELECT {pk}, {column} FROM {table} WHERE {column} <> ''")
            for row_pk, value in cursor.fetchall():
                new, outcome = reencrypt_token(value, legacy=legacy, plaintext_before=col.plaintext_before)
                report.counts[(col.label, outcome)] += 1
                if outcome == "unreadable":
                    report.unreadable.append((col.label, row_pk))
                elif not dry_run:
                    cursor.execute(
                        f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s",
                        [new, row_pk, value],
                    )
    return report
