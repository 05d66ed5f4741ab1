"""Template filters for the operator pages: relative times with the exact time on hover, and durations."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


def relative(value: datetime, now: datetime) -> str:
    """'just now', '4 min ago', '3 h ago', '2 days ago', or 'in 5 min' for a time ahead."""
    seconds = (now - value).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "just now" if not ahead else "in a moment"
    if seconds < 3600:
        text = f"{max(1, round(seconds / 60))} min"
    elif seconds < 48 * 3600:
        text = f"{round(seconds / 3600)} h"
    else:
        text = f"{round(seconds / 86400)} days"
    return f"in {text}" if ahead else f"{text} ago"


@register.filter
def when(value, empty: str = "never"):
    """`<time>` with a relative text and the exact local time (with zone) as its tooltip."""
    if not value:
        return empty
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        relative(value, timezone.now()),
    )


@register.filter
def clock(value):
    """Local time of day ('14:05'), with the date and zone on hover."""
    if not value:
        return ""
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        local.strftime("%H:%M") if local.date() == timezone.localdate() else local.strftime("%d %b %H:%M"),
    )


@register.filter
def millis(value) -> str:
    """A duration in milliseconds for people: '350 ms', '4.2 s', '3 min 05 s'."""
    if value is None:
        return ""
    ms = int(value)
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds:02d} s"


@register.filter
def seconds_span(value) -> str:
    """A span in seconds: '12 min', '3 h', '2 days'."""
    if value is None:
        return "—"
    seconds = float(value)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
