"""Which credentials and report URL a data type syncs with, and a fingerprint of them.

The fingerprint is a keyed digest (HMAC with SECRET_KEY), never the secret itself: a type that failed on its
credentials runs again by itself once the fingerprint of the current ones differs from the one it failed with.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

from .datatypes.base import DataType


def report_url_for(config) -> str:
    """The environment's report URL wins over the admin's."""
    return settings.FINALE_REPORT_URLS.get(config.data_type) or config.report_url


def fingerprint(datatype: DataType, config) -> str:
    """A digest of everything a credential or configuration failure of `datatype` depends on."""
    from .client import load_credentials

    creds = load_credentials()
    parts = [settings.FINALE_BASE_URL, creds.account, creds.api_key, creds.api_secret]
    if datatype.source_kind == "report":
        parts.append(report_url_for(config))
    message = "\x1f".join(parts).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()
