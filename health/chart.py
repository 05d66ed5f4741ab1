"""The dashboard's failure trend: failures per day per data type as a stacked bar chart in plain SVG.

Rendered on the server (the machines it runs on have no internet for a chart library), readable without
JavaScript, and small: one <rect> per non-zero day and type.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# One colour per type, in registry order; a fifth type gets the fifth colour.
PALETTE = ("#2563eb", "#d97706", "#7c3aed", "#0d9488", "#db2777", "#65a30d", "#475569")
WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 10, 26


def type_colours(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def nice_scale(value: int) -> tuple[int, int]:
    """(top, step) for an axis from 0 to at least `value`: step is 1, 2 or 5 × 10^k, at most 5 steps."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step * 5 >= value:
                top = m * step * max(1, math.ceil(value / (m * step)))
                return top, m * step
        step *= 10


def failures_chart(
    counts: dict[tuple[date, str], int], *, names: list[str], last_day: date, days: int = 14
) -> SafeString:
    """SVG of `counts` ((day, type) → failures) for the `days` days ending with `last_day`."""
    colours = type_colours(names)
    day_list = [last_day - timedelta(days=days - 1 - i) for i in range(days)]
    totals = [sum(counts.get((d, n), 0) for n in names) for d in day_list]
    top, step = nice_scale(max(totals + [1]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / days
    bar = slot * 0.68
    parts = [
        format_html(
            '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="chart-title" '
            'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
            '<title id="chart-title">Failures per day and data type, last {} days</title>',
            WIDTH,
            HEIGHT,
            days,
        )
    ]
    for tick in range(0, top + 1, step):
        y = TOP + plot_h * (1 - tick / top)
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
                LEFT,
                WIDTH - RIGHT,
                _n(y),
                _n(y),
                LEFT - 6,
                _n(y + 4),
                f"{tick:,}",
            )
        )
    for i, day in enumerate(day_list):
        x = LEFT + i * slot + (slot - bar) / 2
        y = TOP + plot_h
        for name in names:
            n = counts.get((day, name), 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{} · {}: {} failure{}</title></rect>",
                    _n(x),
                    _n(y),
                    _n(bar),
                    _n(h),
                    colours[name],
                    day.strftime("%a %d %b"),
                    name,
                    n,
                    "" if n == 1 else "s",
                )
            )
        if i % 2 == (days - 1) % 2:
            parts.append(
                format_html(
                    '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
                    _n(LEFT + i * slot + slot / 2),
                    HEIGHT - 8,
                    day.strftime("%d %b"),
                )
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _n(value: float) -> str:
    return f"{value:.1f}"


def legend(names: list[str]) -> list[tuple[str, str]]:
    return list(type_colours(names).items())
