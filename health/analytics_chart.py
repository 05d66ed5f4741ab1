"""The analytics page's charts: stacked bars and availability strips in plain SVG, rendered on the server
like the dashboard's failure chart (health/chart.py), whose scale and palette they share. Every bar and cell
has a <title>, so hovering says what it is without JavaScript.

Built with f-strings, every text escaped with html.escape (`_e`): a 90-day page has thousands of elements,
and Django's per-element HTML formatting cost more than the queries behind them."""

from __future__ import annotations

from html import escape

from django.utils.safestring import SafeString, mark_safe

from .chart import PALETTE, nice_scale

STATE_COLOURS = {
    "healthy": "#16a34a",
    "degraded": "#d97706",
    "unhealthy": "#dc2626",
    "paused": "#94a3b8",
    "unknown": "#e2e8f0",
}
ENDING_COLOURS = {"self": "#0d9488", "retry": "#2563eb", "person": "#7c3aed", "open": "#dc2626"}
OUTCOME_COLOURS = {
    "success": "#16a34a",
    "failed": "#dc2626",
    "rolled_back": "#d97706",
    "skipped": "#94a3b8",
    "running": "#0369a1",
    "queued": "#7c3aed",
}
ATTEMPT_COLOURS = {"1": "#1e40af", "2": "#3b82f6", "3": "#60a5fa", "4+": "#93c5fd"}
RETRY_END_COLOURS = {"exhausted": "#dc2626", "cancelled": "#94a3b8"}
LINE_COLOUR = "#0f172a"

WIDTH = 640
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 26


def code_colours(codes: list[str]) -> dict[str, str]:
    """A colour per error code, most frequent first, so the largest causes get the clearest colours."""
    return {code: PALETTE[i % len(PALETTE)] for i, code in enumerate(codes)}


def stacked_bars(
    *,
    labels: list[str],
    series: list[tuple[str, str, str]],
    values: dict[tuple[int, str], float],
    title: str,
    unit: str = "",
    height: int = 190,
    line: list[float] | None = None,
    line_label: str = "",
    chart_id: str = "",
    width: int = WIDTH,
) -> SafeString:
    """Bars for each label (a day or a bucket), stacked by `series` ((key, name, colour), bottom first).
    `values` maps (label index, key) to a number. `line`, when given, is drawn over the bars with a dot per
    label (e.g. retries queued per day over how they ended)."""
    count = max(1, len(labels))
    totals = [sum(values.get((i, key), 0) for key, _, _ in series) for i in range(count)]
    top, step = nice_scale(max([*totals, *(line or []), 1]))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / count
    bar = max(1.0, slot * 0.7)
    parts = [_svg_open(chart_id, width, height, title)]
    for tick in range(0, top + 1, step):
        y = TOP + plot_h * (1 - tick / top)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{_n(y)}" y2="{_n(y)}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{_n(y + 4)}" text-anchor="end">{tick:,}</text>'
        )
    every = max(1, round(count / 12))
    for i, label in enumerate(labels):
        x = LEFT + i * slot + (slot - bar) / 2
        y = TOP + plot_h
        for key, name, colour in series:
            value = values.get((i, key), 0)
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(bar)}" height="{_n(h)}" fill="{_e(colour)}" '
                f'data-series="{_e(key)}"><title>{_e(label)} · {_e(name)}: {value:,.0f}{_e(unit)}</title></rect>'
            )
        if (count - 1 - i) % every == 0:
            parts.append(
                f'<text class="axis" x="{_n(LEFT + i * slot + slot / 2)}" y="{height - 8}" '
                f'text-anchor="middle">{_e(label)}</text>'
            )
    if line:
        points = [
            (LEFT + i * slot + slot / 2, TOP + plot_h * (1 - value / top)) for i, value in enumerate(line)
        ]
        coordinates = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        parts.append(
            f'<polyline class="line" fill="none" stroke="{LINE_COLOUR}" stroke-width="1.5" points="{coordinates}"/>'
        )
        for (x, y), label, value in zip(points, labels, line, strict=False):
            parts.append(
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="2.6" fill="{LINE_COLOUR}">'
                f"<title>{_e(label)} · {_e(line_label)}: {value:,.0f}</title></circle>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def availability_strips(
    *,
    rows: list[tuple[str, list[dict[str, float]]]],
    day_labels: list[str],
    chart_id: str = "availability",
    width: int = 2 * WIDTH,
) -> SafeString:
    """One row per type, one cell per day, each cell stacked by the share of the day spent in each state
    (healthy at the bottom). `rows` are (type, [state → share of that day])."""
    row_h, gap, label_w = 26, 8, 120
    height = TOP + len(rows) * (row_h + gap) + BOTTOM
    days = max(1, len(day_labels))
    slot = (width - label_w - RIGHT) / days
    cell = max(1.0, slot - (1 if days > 40 else 2))
    parts = [
        _svg_open(chart_id, width, height, "Share of each day per health state and data type", "chart strips")
    ]
    for r, (name, shares) in enumerate(rows):
        y0 = TOP + r * (row_h + gap)
        parts.append(
            f'<text class="axis strip-label" x="{label_w - 8}" y="{_n(y0 + row_h / 2 + 4)}" '
            f'text-anchor="end">{_e(name)}</text>'
        )
        for d, share in enumerate(shares):
            x = label_w + d * slot
            y = y0 + row_h
            summary = ", ".join(f"{s} {v:.1%}" for s, v in share.items() if v)
            for state, colour in STATE_COLOURS.items():
                value = share.get(state, 0)
                if value <= 0:
                    continue
                h = row_h * value
                y -= h
                parts.append(
                    f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(cell)}" height="{_n(h)}" fill="{colour}" '
                    f'data-state="{state}"><title>{_e(name)} · {_e(day_labels[d])}: {_e(summary)}</title></rect>'
                )
    every = max(1, round(days / 12))
    for d, label in enumerate(day_labels):
        if (days - 1 - d) % every == 0:
            parts.append(
                f'<text class="axis" x="{_n(label_w + d * slot + cell / 2)}" y="{height - 8}" '
                f'text-anchor="middle">{_e(label)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _svg_open(chart_id: str, width: int, height: int, title: str, css: str = "chart") -> str:
    return (
        f'<svg class="{css}" id="{_e(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_e(title)}</title>"
    )


def _e(text) -> str:
    return escape(str(text))


def _n(value: float) -> str:
    return f"{value:.1f}"
