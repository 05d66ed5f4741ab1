"""Template filters for the operator pages: relative times with the exact time on hover, durations, and a
dict lookup. The texts come from finalesync/texts.py, so pages, the admin and the commands read the same."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from finalesync import texts

register = template.Library()


def _time(value, text: str):
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), texts.stamp(value), text
    )


@register.filter
def when(value, empty: str = "never"):
    """`<time>` with a relative text ('4 min ago') and the exact local time (with zone) as its tooltip."""
    if not value:
        return empty
    return _time(value, texts.ago(value))


@register.filter
def clock(value, precision: str = ""):
    """Local time with its zone ('14:05 CET', or with the date when not today; `clock:"seconds"` gives
    '14:05:09 CET'); the full time on hover."""
    if not value:
        return ""
    return _time(value, texts.clock(value, seconds=precision == "seconds"))


@register.filter
def millis(value) -> str:
    """A duration in milliseconds for people: '350 ms', '4.2 s', '3 min'."""
    return "" if value is None else texts.duration(int(value) / 1000)


@register.filter
def seconds_span(value) -> str:
    """A span in seconds: '12 min', '3 h', '2 days'."""
    return texts.duration(value)


@register.filter
def get(mapping, key):
    """`mapping[key]` in a template (None when absent)."""
    return mapping.get(key) if hasattr(mapping, "get") else None
