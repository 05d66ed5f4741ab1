"""`GET /metrics`: the system health in Prometheus text format, built by prometheus_client from the database.

The values are read from the tables at scrape time (not kept in process memory), so every web worker answers
the same, and a restart loses nothing. Counters derived from sync runs go down when cleanup removes old runs;
Prometheus treats that as a counter reset, which `rate()` and `increase()` handle.
"""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from finalesync.datatypes import registry
from finalesync.models import SyncRun
from retries.models import RetryItem, RetryStatus

from .analytics import time_to_recovery_histogram
from .grading import Grade
from .models import HealthStatus
from .system import SystemHealth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds; a report sync takes from under a second (small account) to many minutes (a million rows).
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800)


class SyncCollector:
    """Every metric; with `public`, only the status gauges (what anonymous `/health/` callers see too)."""

    def __init__(self, health: SystemHealth, *, public: bool = False):
        self.health = health
        self.public = public

    def collect(self):
        health = self.health
        yield _state_set(
            "finalesync_status",
            "Overall status of the sync system (1 for the current status).",
            [((), health.status)],
            [s.value for s in HealthStatus],
            labels=[],
        )
        types = health.data_types
        yield _state_set(
            "finalesync_data_type_status",
            "Effective status per data type (stale beyond four intervals counts as unhealthy).",
            [((t.data_type,), t.effective_status) for t in types],
            [s.value for s in HealthStatus],
            labels=["data_type"],
        )
        if self.public:
            return
        yield _state_set(
            "finalesync_data_type_grade",
            "Health grade per data type (excellent, good, fair, poor, unknown).",
            [((t.data_type,), t.grade) for t in types],
            [g.value for g in Grade],
            labels=["data_type"],
            state_label="grade",
        )
        per_type = [
            ("finalesync_data_type_consecutive_failures", "Failed runs in a row.", "consecutive_failures"),
            ("finalesync_data_type_items", "Rows of the type after its last successful sync.", "item_count"),
        ]
        for name, doc, attr in per_type:
            family = GaugeMetricFamily(name, doc, labels=["data_type"])
            for t in types:
                family.add_metric([t.data_type], getattr(t, attr))
            yield family
        family = GaugeMetricFamily(
            "finalesync_data_type_seconds_since_last_success",
            "Seconds since the type last synced successfully (absent when it never did).",
            labels=["data_type"],
        )
        for t in types:
            if t.seconds_since_success is not None:
                family.add_metric([t.data_type], t.seconds_since_success)
        yield family
        for name, doc, attr in (
            (
                "finalesync_data_type_stale",
                "1 when the last success is older than interval + grace.",
                "stale",
            ),
            ("finalesync_data_type_paused", "1 when the type is paused, snoozed or disabled.", "paused"),
            (
                "finalesync_data_type_needs_attention",
                "1 when the type waits for a person.",
                "needs_attention",
            ),
        ):
            family = GaugeMetricFamily(name, doc, labels=["data_type"])
            for t in types:
                family.add_metric([t.data_type], 1 if getattr(t, attr) else 0)
            yield family

        depth = GaugeMetricFamily(
            "finalesync_retry_queue_items", "Items in the retry queue by status.", labels=["status"]
        )
        counts = dict(RetryItem.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in RetryStatus:
            depth.add_metric([status.value], counts.get(status.value, 0))
        yield depth
        yield GaugeMetricFamily(
            "finalesync_retry_oldest_pending_age_seconds",
            "Age of the oldest pending retry (0 when none is pending).",
            value=health.oldest_pending_retry_age_seconds or 0,
        )
        yield GaugeMetricFamily(
            "finalesync_failures_24h",
            "Failed or rolled-back syncs in the last 24 hours.",
            value=health.failures_24h,
        )
        if health.last_cycle_at is not None:
            yield GaugeMetricFamily(
                "finalesync_last_cycle_timestamp_seconds",
                "Unix time the last sync cycle started.",
                value=health.last_cycle_at.timestamp(),
            )
        yield from _run_metrics()
        # Retry analytics (health/analytics.py): time to recovery per type, over the sync runs kept.
        yield time_to_recovery_histogram()


def _state_set(name, doc, rows, states, *, labels, state_label="status"):
    family = GaugeMetricFamily(name, doc, labels=[*labels, state_label])
    for label_values, current in rows:
        for state in states:
            family.add_metric([*label_values, state], 1 if state == current else 0)
    return family


def _run_metrics():
    """The duration histogram and the rollback counter, from one aggregate over the kept sync runs."""
    finished = SyncRun.objects.exclude(outcome__in=[SyncRun.Outcome.RUNNING, SyncRun.Outcome.SKIPPED])
    aggregates = {f"le_{b}": Count("id", filter=Q(duration_ms__lte=b * 1000)) for b in DURATION_BUCKETS}
    rows = {
        r["data_type"]: r
        for r in finished.values("data_type")
        .annotate(
            count=Count("id"),
            total_ms=Sum("duration_ms"),
            rolled_back=Count("id", filter=Q(outcome=SyncRun.Outcome.ROLLED_BACK)),
            failed=Count("id", filter=Q(outcome=SyncRun.Outcome.FAILED)),
            **aggregates,
        )
        .order_by()
    }
    histogram = HistogramMetricFamily(
        "finalesync_sync_duration_seconds",
        "Duration of finished sync runs (success, failed, rolled back), over the runs kept.",
        labels=["data_type"],
    )
    rollbacks = CounterMetricFamily(
        "finalesync_rollbacks",
        "Syncs refused and rolled back (empty or suspicious data).",
        labels=["data_type"],
    )
    failures = CounterMetricFamily("finalesync_sync_failures", "Failed syncs.", labels=["data_type"])
    for name in registry.NAMES:
        row = rows.get(name) or {"count": 0, "total_ms": 0, "rolled_back": 0, "failed": 0}
        buckets = [(str(float(b)), row.get(f"le_{b}", 0)) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", row["count"]))
        histogram.add_metric([name], buckets, sum_value=(row["total_ms"] or 0) / 1000)
        rollbacks.add_metric([name], row["rolled_back"])
        failures.add_metric([name], row["failed"])
    yield histogram
    yield rollbacks
    yield failures


def render(health: SystemHealth, *, public: bool = False) -> bytes:
    """The Prometheus exposition of `health` plus the queue and run metrics read now; with `public`, the
    status gauges only."""
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(SyncCollector(health, public=public))
    return generate_latest(collectors)
