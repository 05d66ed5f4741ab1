"""Which data types a scheduled cycle syncs, and why it leaves the others alone (conditional syncs)."""

from __future__ import annotations

from datetime import datetime

from .datatypes import registry
from .models import DataTypeConfig


def skip_reason(config: DataTypeConfig, now: datetime) -> str | None:
    """Why an unforced run leaves `config`'s type alone, or None when it is due and allowed."""
    if not config.enabled:
        return "disabled"
    if config.paused:
        return "paused"
    if config.is_snoozed(now):
        return f"snoozed until {config.snoozed_until:%Y-%m-%d %H:%M} UTC"
    if config.needs_attention:
        return "waiting for a person after a non-recoverable failure (fix it and resume, or force a run)"
    if not config.is_due(now):
        return f"not due until {config.next_run_at():%H:%M} UTC"
    return None


def due_types(*, now: datetime) -> list[str]:
    """The types to sync now. Records on each other type why it was left alone."""
    from .sync import ensure_configs

    configs = ensure_configs()
    due = []
    for name in registry.NAMES:
        config = configs[name]
        reason = skip_reason(config, now)
        if reason is None:
            due.append(name)
        elif config.last_skip_reason != reason:
            DataTypeConfig.objects.filter(pk=config.pk).update(last_skip_reason=reason, last_skipped_at=now)
    return due
