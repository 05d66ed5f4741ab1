"""The retry analytics page, its JSON and its CSV downloads (URLs in health/analytics_urls.py).

Thin: the figures come from health/analytics.py; this module only picks the window from the query string,
checks who is asking, and turns the report into charts, a JSON document or a CSV file.
"""

from __future__ import annotations

import csv
import hmac
from bisect import bisect_left
from collections import Counter
from io import StringIO

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from finalesync.datatypes import registry

from . import analytics, analytics_chart
from .analytics import AnalyticsReport
from .chart import type_colours
from .daily import (
    ATTEMPT_COLUMNS,
    ENDING_LABELS,
    ENDINGS,
    RECOVERABLE_CODES,
    RUN_OUTCOMES,
    STATES,
    TTR_BUCKETS,
)
from .dashboard import shorten


class BadQuery(ValueError):
    pass


def _window_args(request, *, strict: bool) -> tuple[int, str | None]:
    """(days, data_type) from `?days=30&type=inventory`. `strict`: a bad value raises BadQuery (JSON and CSV
    callers are programs); otherwise it falls back to the defaults (a person on the page)."""
    raw_days = request.GET.get("days", "")
    raw_type = request.GET.get("type", "").strip()
    try:
        days = int(raw_days) if raw_days else analytics.DEFAULT_DAYS
        if days not in analytics.WINDOWS:
            raise ValueError
    except ValueError:
        if strict:
            raise BadQuery(f"days must be one of {', '.join(map(str, analytics.WINDOWS))}") from None
        days = analytics.DEFAULT_DAYS
    data_type = None if raw_type in ("", "all") else raw_type
    if data_type and data_type not in registry.DATATYPES:
        if strict:
            raise BadQuery(f"unknown type {data_type!r}; known: all, {', '.join(registry.NAMES)}")
        data_type = None
    return days, data_type


def may_read(request) -> bool:
    """A staff session, or `Authorization: Bearer <METRICS_TOKEN>` when that setting is not empty."""
    user = request.user
    if user.is_authenticated and user.is_active and user.is_staff:
        return True
    token = getattr(settings, "METRICS_TOKEN", "") or ""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Bytes: compare_digest refuses str with non-ASCII characters, which a caller may well send.
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode())
    )


def _guarded(request):
    """(report, None) for a permitted, well-formed request, else (None, an error response)."""
    if not may_read(request):
        error = "staff login or Authorization: Bearer <METRICS_TOKEN> required"
        return None, JsonResponse({"error": error}, status=403)
    try:
        days, data_type = _window_args(request, strict=True)
    except BadQuery as exc:
        return None, JsonResponse({"error": str(exc)}, status=400)
    return analytics.analytics_report(days=days, data_type=data_type), None


@never_cache
@require_GET
def analytics_json(request):
    report, error = _guarded(request)
    return error or JsonResponse(report.as_json(), json_dumps_params={"ensure_ascii": False})


@never_cache
@require_GET
def analytics_csv(request, table: str):
    report, error = _guarded(request)
    if error:
        return error
    if table not in AnalyticsReport.TABLES:
        return JsonResponse(
            {"error": f"no table {table!r}; tables: {', '.join(AnalyticsReport.TABLES)}"}, status=404
        )
    header, rows = report.table(table)
    out = StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    w = report.window
    name = f"finalesync-{table}-{w.days}d{'-' + w.data_type if w.data_type else ''}-{w.end:%Y%m%d}.csv"
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _cell(value):
    """A CSV value that a spreadsheet will not run as a formula: error messages come from Finale."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@never_cache
@staff_member_required
def analytics_page(request):
    days, data_type = _window_args(request, strict=False)
    report = analytics.analytics_report(days=days, data_type=data_type)
    return render(request, "health/analytics.html", page_context(report))


# --- the page ------------------------------------------------------------------------------------------------
def _span(seconds: float) -> str:
    if seconds < 3600:
        return f"≤{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"≤{seconds / 3600:.0f} h"
    return f"≤{seconds / 86400:.0f} d"


def page_context(report: AnalyticsReport) -> dict:
    w = report.window
    query = {"days": w.days, "type": w.data_type or "all"}
    day_labels = [d.strftime("%d %b") for d in w.day_list]
    labels = {name: registry.get(name).label for name in registry.NAMES}
    total = report.recovery_total
    causes, volume = report.causes, report.volume

    availability = [
        {
            "data_type": a.data_type,
            "label": labels[a.data_type],
            "segments": [(s, a.shares[s], analytics_chart.STATE_COLOURS[s]) for s in STATES],
            "seconds": a.seconds,
            "recorded_since": a.recorded_since if a.recorded_since and a.recorded_since > w.start else None,
        }
        for a in report.availability
    ]

    ttr_labels = [_span(b) for b in TTR_BUCKETS] + [f">{_span(TTR_BUCKETS[-1])[1:]}"]
    ttr_values = Counter(
        (bisect_left(TTR_BUCKETS, ended - started), how)
        for _, started, _, _, _, _, ended, _, how, _ in report.outage_rows
        if ended is not None
    )

    retry_values = {}
    for i, day in enumerate(report.retries):
        for column in ATTEMPT_COLUMNS:
            retry_values[(i, f"a{column}")] = day.succeeded[column]
        retry_values[(i, "exhausted")] = day.exhausted
        retry_values[(i, "cancelled")] = day.cancelled
    retry_series = [
        (f"a{c}", f"succeeded on attempt {c}", analytics_chart.ATTEMPT_COLOURS[c]) for c in ATTEMPT_COLUMNS
    ] + [(k, k, colour) for k, colour in analytics_chart.RETRY_END_COLOURS.items()]

    codes = causes.codes()
    colours = analytics_chart.code_colours(codes)
    code_series = [(c, c, colours[c]) for c in codes]
    cause_charts = []
    for name in w.types:
        values = {
            (i, code): n
            for (t, code), per_day in causes.by_code.items()
            if t == name
            for i, n in enumerate(per_day)
        }
        cause_charts.append(
            {
                "data_type": name,
                "label": labels[name],
                "total": sum(values.values()),
                "svg": analytics_chart.stacked_bars(
                    labels=day_labels,
                    series=code_series,
                    values=values,
                    title=f"{labels[name]}: failures per day by error code",
                    unit=" failures",
                    height=150,
                    chart_id=f"causes-{name}",
                ),
            }
        )
    code_table = [
        {
            "code": code,
            "colour": colours[code],
            "recoverable": code in RECOVERABLE_CODES,
            "counts": [sum(causes.by_code.get((name, code), [])) for name in w.types],
            "total": sum(sum(causes.by_code.get((name, code), [])) for name in w.types),
        }
        for code in codes
    ]

    per_day_runs = volume.runs_per_day(w.days)
    run_values = {(i, o): n for i, day in enumerate(per_day_runs) for o, n in day.items()}
    type_colour = type_colours(registry.NAMES)
    changed_values = {
        (i, name): n for name, per_day in volume.rows_changed.items() for i, n in enumerate(per_day)
    }

    return {
        "report": report,
        "window": w,
        "windows": [(d, f"?{urlencode({**query, 'days': d})}") for d in analytics.WINDOWS],
        "type_choices": [("all", "All types")] + [(n, labels[n]) for n in registry.NAMES],
        "selected_type": w.data_type or "all",
        "type_label": labels[w.data_type] if w.data_type else "all types",
        "json_url": f"{reverse('analytics-json')}?{urlencode(query)}",
        "csv_links": [
            (t.replace("_", " "), f"{reverse('analytics-csv', args=[t])}?{urlencode(query)}")
            for t in AnalyticsReport.TABLES
        ],
        "summary": {
            "outages": total.outages,
            "open": total.open,
            "median": total.median_seconds,
            "p95": total.p95_seconds,
            "healed_share": total.healed_share,
            "healed": total.healed_without_person,
            "recoverable": total.recoverable_recovered,
            "failures": causes.total,
            "runs": sum(sum(v) for v in volume.runs.values()),
        },
        "states": [(s, analytics_chart.STATE_COLOURS[s]) for s in STATES],
        "availability": availability,
        "availability_svg": analytics_chart.availability_strips(
            rows=[(labels[a.data_type], a.day_shares()) for a in report.availability], day_labels=day_labels
        ),
        "recovery": [
            {**r.as_json(), "label": labels[r.data_type] if r.data_type else "All types"}
            for r in report.recovery
        ],
        "endings": [(e, ENDING_LABELS[e], analytics_chart.ENDING_COLOURS[e]) for e in ENDINGS],
        "ttr_svg": analytics_chart.stacked_bars(
            labels=ttr_labels,
            series=[(e, ENDING_LABELS[e], analytics_chart.ENDING_COLOURS[e]) for e in ENDINGS[:-1]],
            values=ttr_values,
            title="Outages by time to recovery and how they ended",
            unit=" outages",
            height=170,
            chart_id="ttr",
        ),
        "outages": report.newest_outages(analytics.OUTAGES_SHOWN),
        "outages_more": max(0, len(report.outage_rows) - analytics.OUTAGES_SHOWN),
        # Newest first, only the days something happened.
        "retry_days": [
            {
                "day": d.day,
                "scheduled": d.scheduled,
                "succeeded": [d.succeeded[c] for c in ATTEMPT_COLUMNS],
                "exhausted": d.exhausted,
                "cancelled": d.cancelled,
            }
            for d in reversed(report.retries)
            if d.scheduled or d.exhausted or d.cancelled or any(d.succeeded.values())
        ],
        "retry_series": retry_series,
        "retry_totals": {
            "scheduled": sum(d.scheduled for d in report.retries),
            "succeeded": {c: sum(d.succeeded[c] for d in report.retries) for c in ATTEMPT_COLUMNS},
            "exhausted": sum(d.exhausted for d in report.retries),
            "cancelled": sum(d.cancelled for d in report.retries),
        },
        "attempt_columns": ATTEMPT_COLUMNS,
        "retry_svg": analytics_chart.stacked_bars(
            labels=day_labels,
            series=retry_series,
            values=retry_values,
            title="Retries per day: how they ended, and how many were queued",
            unit=" retries",
            line=[d.scheduled for d in report.retries],
            line_label="queued",
            chart_id="retries",
            width=2 * analytics_chart.WIDTH,
            height=200,
        ),
        "retry_keep_days": settings.CLEANUP_RETRY_DAYS,
        "retries_truncated": w.days > settings.CLEANUP_RETRY_DAYS,
        "code_series": code_series,
        "cause_charts": cause_charts,
        "code_table": code_table,
        "type_labels": [labels[n] for n in w.types],
        "top_messages": [
            {
                **g.as_json(),
                "short": shorten(g.message, 160),
                "types_text": ", ".join(f"{t} {n}" for t, n in sorted(g.types.items())),
            }
            for g in causes.messages[: analytics.TOP_MESSAGES]
        ],
        "messages_more": sum(g.count for g in causes.messages[analytics.TOP_MESSAGES :])
        + causes.other_messages,
        "retry_after": [r for r in causes.retry_after if r.requests],
        "outcome_series": [
            (o, o.replace("_", " "), analytics_chart.OUTCOME_COLOURS[o]) for o in RUN_OUTCOMES
        ],
        "runs_svg": analytics_chart.stacked_bars(
            labels=day_labels,
            series=[(o, o.replace("_", " "), analytics_chart.OUTCOME_COLOURS[o]) for o in RUN_OUTCOMES],
            values=run_values,
            title="Sync runs per day by outcome",
            unit=" runs",
            chart_id="runs",
        ),
        "type_series": [(n, labels[n], type_colour[n]) for n in w.types],
        "changed_svg": analytics_chart.stacked_bars(
            labels=day_labels,
            series=[(n, labels[n], type_colour[n]) for n in w.types],
            values=changed_values,
            title="Rows created, updated or deleted per day",
            unit=" rows",
            height=160,
            chart_id="changed",
        ),
        "rows_changed_total": sum(sum(v) for v in volume.rows_changed.values()),
        "durations": [{**d.as_json(), "label": labels[d.data_type]} for d in volume.durations],
    }
