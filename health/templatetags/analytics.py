"""Template filters of the analytics page."""

from django import template

register = template.Library()


@register.filter
def percent(value, digits: int = 1) -> str:
    """A share (0..1) as '99.5 %'; '—' when there is none."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def width(value) -> str:
    """A share (0..1) as a CSS width ('12.345%'), for the availability bars."""
    return f"{max(0.0, float(value or 0)) * 100:.3f}%"
