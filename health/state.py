"""One state per data type: a single phrase for where it stands and a single next step for a person.

`describe()` is the one place that decides it, from the type's configuration (finalesync's schedule state),
its graded health and its open retry. The dashboard card, `synchealth`, `/health/`, the alerts and the admin
all show what it says, so a type never reads "fair", "needs a person", "waits" and "retry pending" at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import models

from finalesync import errors, texts
from finalesync.models import DataTypeConfig, ScheduleState

from .models import HealthStatus

CREDENTIAL_CODES = {"auth", "html_response", "configuration", "not_found", "tls"}
SUSPICIOUS_CODES = {"suspicious_drop", "suspicious_change"}


class Condition(models.TextChoices):
    OK = "ok", "synced"
    STALE = "stale", "stale"
    FAILING = "failing", "failing"
    RETRYING = "retrying", "retrying"
    WAITING = "waiting", "waiting for a person"
    HELD = "held", "waiting for Finale"
    PAUSED = "paused", "paused"
    SNOOZED = "snoozed", "snoozed"
    DISABLED = "disabled", "disabled"
    NEVER = "never", "never synced"


@dataclass(frozen=True)
class TypeState:
    condition: str
    phrase: str
    next_step: str
    tone: str  # ok, warn, bad, muted — the card's colour


def describe(
    *,
    config: DataTypeConfig,
    status: str,
    effective_status: str,
    stale: bool,
    very_stale: bool,
    last_success_time: datetime | None,
    error_message: str | None,
    item_count: int,
    retry=None,
    next_run_at: datetime | None = None,
    now: datetime,
) -> TypeState:
    """The one state of a type at `now`. `retry` is its open sync retry (or None)."""
    schedule, _ = config.schedule(now)
    if schedule == ScheduleState.DISABLED:
        return TypeState(
            Condition.DISABLED, "Disabled", "Enable it in the admin (Data types) to sync it.", "muted"
        )
    if schedule == ScheduleState.PAUSED:
        return TypeState(Condition.PAUSED, "Paused", "Resume it to sync on schedule again.", "muted")
    if schedule == ScheduleState.SNOOZED:
        return TypeState(
            Condition.SNOOZED,
            f"Snoozed until {texts.clock(config.snoozed_until, now)}",
            "It syncs again after that; Resume ends the snooze now.",
            "muted",
        )
    if config.needs_attention:
        return TypeState(
            Condition.WAITING,
            f"Waits for a person: {texts.shorten(config.attention_reason or error_message, 160)}",
            _waiting_advice(config.attention_code),
            "bad",
        )
    if retry is not None:
        when = "now" if retry.status == "processing" else f"at {texts.clock(retry.next_retry_at, now)}"
        return TypeState(
            Condition.RETRYING,
            f"Retrying {when} (attempt {retry.retry_count + 1} of {retry.max_retries}): "
            f"{texts.shorten(retry.last_error_message or error_message, 120)}",
            "Nothing to do unless it keeps failing; Retry now runs it at once.",
            "warn",
        )
    if schedule == ScheduleState.HELD:
        return TypeState(
            Condition.HELD,
            f"Finale asked us to wait until {texts.clock(config.held_until, now)}",
            "Nothing to do: it runs again then (Sync now goes at once).",
            "warn",
        )
    if status == HealthStatus.UNKNOWN:
        return TypeState(
            Condition.NEVER, "Never synced yet", "Press Sync now, or wait for the schedule.", "muted"
        )
    if very_stale:
        return TypeState(
            Condition.STALE,
            f"No successful sync for {texts.duration(now - last_success_time) if last_success_time else 'ever'}: "
            "the schedule has stopped syncing it",
            "Check that the scheduler runs (`manage.py qcluster`); Sync now runs it at once.",
            "bad",
        )
    if effective_status in (HealthStatus.UNHEALTHY, HealthStatus.DEGRADED):
        return TypeState(
            Condition.FAILING,
            f"Failing: {texts.shorten(error_message, 160)}",
            "Automatic retries are used up: look at the error, then Sync now or Requeue its retry.",
            "bad" if effective_status == HealthStatus.UNHEALTHY else "warn",
        )
    if stale:
        return TypeState(
            Condition.STALE,
            f"Stale: last success {texts.ago(last_success_time, now)}",
            "Check that the scheduler runs (`manage.py qcluster`)"
            + (f"; next run {texts.clock(next_run_at, now)}." if next_run_at else "."),
            "warn",
        )
    return TypeState(
        Condition.OK,
        f"Synced {texts.ago(last_success_time, now)}: {item_count:,} rows",
        f"Nothing to do; next run {texts.clock(next_run_at, now)}." if next_run_at else "Nothing to do.",
        "ok",
    )


def _waiting_advice(code: str) -> str:
    if code in SUSPICIOUS_CODES:
        return (
            "Review the refused sync (Review and apply… under recent failures) if the change is real, or fix "
            "the report in Finale and Resume."
        )
    advice = errors.advice_for(code) if code else "Look at the error, fix its cause, then Resume the type."
    if code in CREDENTIAL_CODES:
        advice += " It runs again by itself once the credentials or report URL change."
    return advice
