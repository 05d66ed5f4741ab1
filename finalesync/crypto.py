"""Encryption at rest for secrets stored in the database (Fernet: AES-128-CBC + HMAC-SHA256).

The key is FINALESYNC_ENCRYPTION_KEY when set (a urlsafe base64 32-byte Fernet key), otherwise derived from
SECRET_KEY with HKDF, so a fresh install is encrypted without extra setup.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models


@functools.cache
def _fernet(key_setting: str, secret_key: str) -> Fernet:
    if key_setting:
        return Fernet(key_setting.encode())
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"finalesync", info=b"secrets-at-rest").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def fernet() -> Fernet:
    return _fernet(settings.FINALESYNC_ENCRYPTION_KEY, settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    """Return the plaintext; raises InvalidToken when the key changed since the value was stored."""
    return fernet().decrypt(token.encode()).decode() if token else ""


class EncryptedTextField(models.TextField):
    """A text field stored as a Fernet token. Python code sees plaintext; the database never does."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return decrypt(value)
        except InvalidToken:
            # A changed SECRET_KEY must not crash every page: the value reads as unset and the admin says so.
            return ""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value
