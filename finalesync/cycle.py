"""Which data types a scheduled cycle syncs, and why it leaves the others alone (conditional syncs)."""

from __future__ import annotations

from datetime import datetime

from .credentials import fingerprint
from .datatypes import registry
from .models import DataTypeConfig
from .sync import ensure_configs

# Failures whose cure is new credentials, a new report URL or a setting: once those differ from what the
# type failed with, it may run again without a person pressing a button.
CREDENTIAL_ERROR_CODES = frozenset({"auth", "html_response", "configuration", "not_found", "tls"})


def unstick_changed_credentials(configs: dict[str, DataTypeConfig]) -> list[str]:
    """Lift "waiting for a person" from types whose credential or configuration failure happened with
    credentials that have changed since (compared by fingerprint, never by the secret). Returns their names."""
    lifted = []
    for name, config in configs.items():
        if not config.needs_attention or config.attention_code not in CREDENTIAL_ERROR_CODES:
            continue
        if (
            config.attention_fingerprint
            and fingerprint(registry.get(name), config) != config.attention_fingerprint
        ):
            DataTypeConfig.objects.filter(pk=config.pk, needs_attention=True).update(
                needs_attention=False, attention_reason="", attention_code="", attention_fingerprint=""
            )
            config.needs_attention = False
            lifted.append(name)
    return lifted


def due_types(*, now: datetime) -> list[str]:
    """The types to sync now. Records on each other type why it was left alone."""
    configs = ensure_configs()
    unstick_changed_credentials(configs)
    due = []
    for name in registry.NAMES:
        config = configs[name]
        reason = config.skip_reason(now)
        if reason is None:
            due.append(name)
        elif config.last_skip_reason != reason:
            DataTypeConfig.objects.filter(pk=config.pk).update(
                last_skip_reason=reason[:200], last_skipped_at=now
            )
    return due
