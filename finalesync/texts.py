"""How times, durations and long texts are shown to people: the dashboard, the admin, the commands and the
alerts all use these, so "2 min ago" and "14:35 CET" read the same everywhere."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from .redact import redact


def duration(value: timedelta | float | int | None) -> str:
    """'350 ms', '4.2 s', '45 s', '12 min', '5 h', '3 days' (seconds below 2 minutes, minutes below 2 hours,
    hours below 2 days). `value` is a timedelta or seconds."""
    if value is None:
        return "—"
    exact = abs(value.total_seconds() if isinstance(value, timedelta) else float(value))
    if exact < 1:
        return f"{exact * 1000:.0f} ms"
    if exact < 10:
        return f"{exact:.1f} s"
    seconds = int(exact)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """'just now', '4 min ago', 'in 12 min', or 'never'."""
    if when is None:
        return "never"
    now = now or timezone.now()
    delta = now - when
    if abs(delta) < timedelta(seconds=5):
        return "just now"
    return f"{duration(delta)} ago" if delta > timedelta(0) else f"in {duration(delta)}"


def clock(when: datetime | None, now: datetime | None = None, *, seconds: bool = False) -> str:
    """A time in the configured zone (TIME_ZONE) with the zone's name: '14:35 CET' today, else
    '2026-11-29 14:35 CET'; `seconds` adds them ('14:35:07 CET')."""
    if when is None:
        return "—"
    local = timezone.localtime(when)
    today = timezone.localtime(now or timezone.now()).date()
    time = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    text = time if local.date() == today else f"{local:%Y-%m-%d} {time}"
    return f"{text} {local.tzname() or ''}".strip()


def stamp(when: datetime | None) -> str:
    """The exact time in the configured zone, always with the date: '2026-11-29 14:35:07 CET' (tooltips,
    history rows, anything read later or elsewhere)."""
    if when is None:
        return "—"
    local = timezone.localtime(when)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or ''}".strip()


def shorten(text: str | None, limit: int = 180) -> str:
    """Redacted, on one line, at most `limit` characters (an ellipsis marks the cut)."""
    text = " ".join(redact(text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
