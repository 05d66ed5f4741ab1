"""Retry analytics over a known week (tests/analyticsdata.py): every figure by hand, whether the closed days
come from the raw tables or from stored AnalyticsDay rows; who may read the JSON and the CSV; what a query
costs as the tables grow; and the time-to-recovery histogram on /metrics."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from finalesync.models import SyncRun
from health import daily
from health.analytics import analytics_report, nearest_rank, weighted_rank
from health.daily import normalise_message, pause_changes
from health.models import AnalyticsDay

from .analyticsdata import NOW, at, run, seed_history
from .opsdata import bulk, health_rows, make_user

pytestmark = pytest.mark.django_db

WEEK = 6.5 * 86400  # 14 March 00:00 to 20 March 12:00


@pytest.fixture
def week():
    seed_history()
    return analytics_report(days=7, now=NOW)


@pytest.fixture
def staff(client):
    client.force_login(make_user("ops", superuser=True))
    return client


# --- availability --------------------------------------------------------------------------------------------
def test_availability_is_the_recorded_time_in_each_state(week):
    seconds = {a.data_type: a.seconds for a in week.availability}
    assert seconds["inventory"] == {
        "healthy": 556500,
        "degraded": 900 + 600,
        "unhealthy": 3600,
        "paused": 0,
        "unknown": 0,
    }
    # unhealthy from before the window until 14 March 02:00:30, degraded again from 20 March 06:00:30
    assert seconds["vendors"] == {
        "healthy": 532800,
        "degraded": 21570,
        "unhealthy": 7230,
        "paused": 0,
        "unknown": 0,
    }
    # snoozed into the window until 06:00, no history before 16 March 12:00:30
    assert seconds["boms"] == {
        "healthy": 336570,
        "degraded": 1800,
        "unhealthy": 7200,
        "paused": 21600,
        "unknown": 194430,
    }
    # paused a day, snoozed 2 h, paused in the admin for the last 6 h; the refused snooze of vendors is ignored
    assert seconds["purchase_orders"] == {
        "healthy": 446400,
        "degraded": 0,
        "unhealthy": 0,
        "paused": 86400 + 7200 + 21600,
        "unknown": 0,
    }
    for a in week.availability:
        assert sum(a.seconds.values()) == WEEK
    assert week.availability[0].shares["healthy"] == pytest.approx(556500 / WEEK)


def test_availability_per_day_and_when_the_history_begins(week):
    orders = next(a for a in week.availability if a.data_type == "purchase_orders")
    assert orders.days[2] == {"paused": 86400}  # 16 March
    assert orders.days[4] == {"healthy": 79200, "paused": 7200}  # 18 March
    assert orders.days[6] == {"healthy": 21600, "paused": 21600}  # today, until noon
    boms = next(a for a in week.availability if a.data_type == "boms")
    assert boms.days[0] == {"paused": 21600, "unknown": 64800}
    assert boms.day_shares()[0]["paused"] == 0.25
    since = {a.data_type: a.recorded_since for a in week.availability}
    assert since == {
        "inventory": at(1, 0),
        "vendors": at(9, 6),
        "boms": at(16, 12, 0, 30),
        "purchase_orders": at(1, 0),
    }


def test_pause_entries_are_read_from_the_actions_and_the_admin():
    class Entry:
        def __init__(self, action, target="", message=""):
            self.action, self.target, self.message, self.created_at = action, target, message, at(5, 10)

    assert pause_changes(Entry("pause")) == [("paused", True)]
    assert pause_changes(Entry("resume")) == [("paused", False), ("snoozed_until", None)]
    assert pause_changes(Entry("snooze", target="boms for 1.5 h")) == [("snoozed_until", at(5, 11, 30))]
    admin = Entry(
        "change_settings", message="Changed enabled to False, snoozed_until to 2026-03-06 08:00:00+00:00"
    )
    assert pause_changes(admin) == [("disabled", True), ("snoozed_until", at(6, 8))]
    assert pause_changes(Entry("change_settings", message="Changed interval_minutes to 30")) == []


# --- outages and recovery ------------------------------------------------------------------------------------
def test_outages_newest_first_with_how_each_ended(week):
    rows = [
        (o.data_type, o.started_at, o.ended_at, o.ending, o.failures, o.error_code, o.seconds)
        for o in week.outages
    ]
    assert rows == [
        ("vendors", at(20, 6, 0, 30), None, "still open", 2, "rate_limited", 21570),
        ("boms", at(19, 15, 0, 30), at(19, 15, 30, 30), "by a person", 1, "server_error", 1800),
        ("inventory", at(19, 9, 0, 30), at(19, 10, 0, 30), "by a person", 1, "auth", 3600),
        ("inventory", at(17, 8, 0, 30), at(17, 8, 10, 30), "by itself", 2, "timeout", 600),
        ("boms", at(16, 12, 0, 30), at(16, 13, 0, 30), "by a person", 1, "empty_data", 3600),
        ("inventory", at(15, 10, 0, 30), at(15, 10, 15, 30), "by a retry, attempt 2", 2, "server_error", 900),
        # began before the window (3 failed runs, the last in the look-back day), healed inside it
        ("vendors", at(10, 6, 0, 30), at(14, 2, 0, 30), "by a retry, attempt 2", 3, "network", 331200),
    ]


def test_time_to_recovery_per_type_and_overall(week):
    recovery = {r.data_type: r.as_json() for r in week.recovery}
    assert recovery["inventory"] == {
        "data_type": "inventory",
        "outages": 3,
        "recovered": 3,
        "open": 0,
        "median_seconds": 900,
        "p95_seconds": 3600,
        "ended_by": {"self": 1, "retry": 1, "person": 1, "open": 0},
        "recoverable_recovered": 2,
        "healed_without_person": 2,
        "healed_without_person_share": 1.0,
    }
    assert (recovery["vendors"]["median_seconds"], recovery["vendors"]["open"]) == (331200, 1)
    assert (recovery["boms"]["median_seconds"], recovery["boms"]["p95_seconds"]) == (1800, 3600)
    assert recovery["boms"]["healed_without_person_share"] == 0.0  # its server error was fixed by a person
    assert (
        recovery["purchase_orders"]["outages"] == 0 and recovery["purchase_orders"]["median_seconds"] is None
    )
    # all: 600, 900, 1800, 3600, 3600, 331200 → rank 3 and rank 6
    assert recovery[None] == {
        "data_type": None,
        "outages": 7,
        "recovered": 6,
        "open": 1,
        "median_seconds": 1800,
        "p95_seconds": 331200,
        "ended_by": {"self": 1, "retry": 2, "person": 3, "open": 1},
        "recoverable_recovered": 4,
        "healed_without_person": 3,
        "healed_without_person_share": 0.75,
    }


def test_outage_links_open_the_admin_on_its_runs_and_failure_logs(week, staff):
    by_itself = next(o for o in week.outages if o.ended_by == "self")
    runs = staff.get(by_itself.runs_url)
    assert runs.status_code == 200
    assert sorted(r.started_at for r in runs.context["cl"].result_list) == [
        at(17, 8),
        at(17, 8, 5),
        at(17, 8, 10),
    ]
    logs = staff.get(by_itself.failures_url)
    assert [log.error_code for log in logs.context["cl"].result_list] == ["timeout", "timeout"]
    still_open = week.outages[0]
    assert still_open.ended_at is None and "__lte" not in still_open.runs_url
    assert staff.get(still_open.runs_url).context["cl"].result_count == 2


def test_a_failed_restore_neither_starts_nor_extends_an_outage(week):
    boms = [o for o in week.outages if o.data_type == "boms"]
    assert [o.error_code for o in boms] == ["server_error", "empty_data"]


# --- retries -------------------------------------------------------------------------------------------------
def test_retries_per_day(week):
    days = {d.day.day: d.as_json() for d in week.retries}
    assert days[14]["succeeded"] == {"1": 0, "2": 1, "3": 0, "4+": 0}  # vendors' retry #902, attempt 2
    assert days[15] == {
        "day": "2026-03-15",
        "scheduled": 1,
        "succeeded": {"1": 0, "2": 1, "3": 0, "4+": 0},
        "exhausted": 0,
        "cancelled": 0,
    }
    assert (days[17]["scheduled"], days[17]["cancelled"]) == (1, 1)
    # boms gave up on a server error (exhausted); purchase orders failed on credentials (not exhausted)
    assert (days[18]["exhausted"], days[19]["exhausted"]) == (1, 0)
    assert [d["scheduled"] for d in days.values()] == [0, 1, 0, 1, 1, 1, 1]
    healed = week.as_json()["retries"]["healed_without_person"]
    assert healed == {"recoverable_recovered": 4, "healed": 3, "share": 0.75}


def test_attempt_columns_cap_at_four_or_more():
    assert [daily.attempt_column(n) for n in (1, 2, 3, 4, 9)] == ["1", "2", "3", "4+", "4+"]


# --- causes --------------------------------------------------------------------------------------------------
def test_failures_by_code_per_type_and_day(week):
    by_code = {key: per_day for key, per_day in week.causes.by_code.items()}
    assert by_code == {
        ("inventory", "server_error"): [0, 2, 0, 0, 0, 0, 0],
        ("inventory", "timeout"): [0, 0, 0, 2, 0, 0, 0],
        ("inventory", "auth"): [0, 0, 0, 0, 0, 1, 0],
        ("vendors", "rate_limited"): [0, 0, 0, 0, 0, 0, 2],
        ("boms", "empty_data"): [0, 0, 1, 0, 0, 0, 0],
        ("boms", "server_error"): [0, 0, 0, 0, 0, 1, 0],
    }
    assert week.causes.total == 9
    assert week.causes.codes() == ["server_error", "rate_limited", "timeout", "auth", "empty_data"]


def test_top_messages_group_alike_messages(week):
    messages = [(g.count, g.error_code, g.message, dict(g.types)) for g in week.causes.messages]
    assert messages == [
        (2, "rate_limited", "Finale asked us to slow down (HTTP 429); Retry-After N s", {"vendors": 2}),
        (2, "server_error", "Finale failed serving the inventory report (HTTP 503)", {"inventory": 2}),
        (
            2,
            "timeout",
            "Finale did not send any of the inventory report for N s (read timeout)",
            {"inventory": 2},
        ),
        (
            1,
            "auth",
            "Finale rejected the API key/secret for the inventory report (HTTP 401)",
            {"inventory": 1},
        ),
        (
            1,
            "empty_data",
            "Finale returned no bills of materials rows (header only or nothing usable)",
            {"boms": 1},
        ),
        (1, "server_error", "Finale failed serving the bills of materials report (HTTP 502)", {"boms": 1}),
    ]
    assert (
        week.causes.messages[2].example
        == "Finale did not send any of the inventory report for 120 s (read timeout)"
    )
    assert week.causes.other_messages == 0


def test_messages_are_normalised_and_redacted():
    assert normalise_message("Row 12,345 of order 7f3a9c21e4b5d6a8 refused; took 1.5 s (HTTP 502)") == (
        "Row N of order ID refused; took N s (HTTP 502)"
    )
    assert normalise_message("job 0b9c8f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f\n  failed") == "job ID failed"
    assert "hunter2" not in normalise_message("GET https://user:hunter2@example.test/x failed")


def test_retry_after_waits_finale_asked_for(week):
    waits = {r.data_type: r.as_json() for r in week.causes.retry_after}
    assert waits["vendors"] == {
        "data_type": "vendors",
        "requests": 2,
        "median_seconds": 60,
        "p95_seconds": 120,
        "max_seconds": 120,
    }
    assert waits["inventory"]["requests"] == 0 and waits["inventory"]["median_seconds"] is None


# --- volume --------------------------------------------------------------------------------------------------
def test_runs_per_day_by_outcome_and_rows_changed(week):
    per_day = week.volume.runs_per_day(7)
    assert [d["success"] for d in per_day] == [1, 2, 2, 1, 0, 2, 0]
    assert [d["failed"] for d in per_day] == [0, 2, 0, 2, 1, 2, 2]
    assert [d["rolled_back"] for d in per_day] == [0, 0, 1, 0, 0, 0, 0]
    assert [d["skipped"] for d in per_day] == [0, 0, 0, 0, 1, 0, 0]
    assert sum(sum(d.values()) for d in per_day) == 19
    assert week.volume.rows_changed == {
        "vendors": [7, 0, 0, 0, 0, 0, 0],
        "inventory": [0, 4 + 16, 0, 3, 0, 2, 0],
        "boms": [0, 0, 50, 0, 0, 3, 0],
    }


def test_median_and_95th_percentile_duration_per_type(week):
    durations = {d.data_type: d.as_json() for d in week.volume.durations}
    # inventory: 1..9 s (the skipped run does not count); boms: 1..6 s, the failed restore included
    assert durations["inventory"] == {"data_type": "inventory", "runs": 9, "median_ms": 5000, "p95_ms": 9000}
    assert durations["vendors"] == {"data_type": "vendors", "runs": 3, "median_ms": 3000, "p95_ms": 4000}
    assert durations["boms"] == {"data_type": "boms", "runs": 6, "median_ms": 3000, "p95_ms": 6000}
    assert durations["purchase_orders"] == {
        "data_type": "purchase_orders",
        "runs": 0,
        "median_ms": None,
        "p95_ms": None,
    }


def test_nearest_rank_percentiles():
    assert nearest_rank([], 50) is None
    assert [nearest_rank([10, 20, 30, 40], p) for p in (25, 50, 51, 95, 100)] == [10, 20, 30, 40, 40]
    assert weighted_rank([(120.0, 1), (60.0, 3)], 50) == 60.0
    assert weighted_rank([(120.0, 1), (60.0, 3)], 95) == 120.0


# --- one type ------------------------------------------------------------------------------------------------
def test_one_type_window(week):
    inventory = analytics_report(days=7, data_type="inventory", now=NOW)
    assert [o.data_type for o in inventory.outages] == ["inventory"] * 3
    assert [r.data_type for r in inventory.recovery] == ["inventory"]
    assert inventory.recovery_total.median_seconds == 900
    assert sum(d.scheduled for d in inventory.retries) == 2  # its third retry was queued long before
    assert set(inventory.causes.by_code) == {("inventory", c) for c in ("server_error", "timeout", "auth")}
    with pytest.raises(ValueError):
        analytics_report(days=7, data_type="nope", now=NOW)
    with pytest.raises(ValueError):
        analytics_report(days=5, now=NOW)


# --- stored days ---------------------------------------------------------------------------------------------
def test_closed_days_are_stored_once_and_read_back_the_same(week):
    first = week.as_json()
    assert sorted(AnalyticsDay.objects.values_list("day", flat=True)) == [
        at(d, 0).date() for d in range(14, 20)
    ]
    again = analytics_report(days=7, now=NOW).as_json()
    assert again == first
    # The whole window read live from the tables gives the same figures as stored days + live today.
    window = daily.make_window(days=7, now=NOW)
    live, still_open = daily.compute_days(window, with_open=True)
    stored = [AnalyticsDay.objects.get(day=d) for d in window.day_list[:6]]
    assert [{**s.figures, "outages": s.outages, "recovery": s.recovery} for s in stored] == live[:6]
    assert [o.first_run_id for o in still_open] == [week.outages[0].first_run_id]


def test_a_stored_day_is_not_read_again_but_today_is(week):
    assert week.causes.total == 9
    run("inventory", at(16, 9), "failed", code="timeout", log="late, back-dated")
    run("inventory", at(20, 9), "failed", code="timeout", log="new today")
    later = analytics_report(days=7, now=NOW)
    assert later.causes.total == 10  # today's failure counts; 16 March was stored before the late row


def test_yesterday_closes_when_its_runs_have_finished():
    seed_history()
    just_after_midnight = at(21, 0, 10)
    running = SyncRun.objects.create(data_type="vendors", trigger="schedule", started_at=at(20, 23, 58))
    analytics_report(days=7, now=just_after_midnight).as_json()
    assert not AnalyticsDay.objects.filter(day=at(20, 0).date()).exists()  # a run of it is still going
    SyncRun.objects.filter(pk=running.pk).update(outcome="success", finished_at=at(21, 0, 5))
    analytics_report(days=7, now=just_after_midnight).as_json()
    assert AnalyticsDay.objects.filter(day=at(20, 0).date()).exists()
    # A run stuck as running (its worker died) holds the day for GRACE at most.
    SyncRun.objects.create(data_type="boms", trigger="schedule", started_at=at(21, 23, 50))
    analytics_report(days=7, now=at(22, 0, 30)).as_json()
    assert not AnalyticsDay.objects.filter(day=at(21, 0).date()).exists()
    analytics_report(days=7, now=at(22, 0) + daily.GRACE).as_json()
    assert AnalyticsDay.objects.filter(day=at(21, 0).date()).exists()


def test_days_follow_the_local_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    health_rows(now=at(20, 11))
    run(
        "inventory",
        at(15, 23, 30),
        "failed",
        code="timeout",
        log="late evening in Berlin? no: after midnight",
    )
    report = analytics_report(days=7, now=at(20, 11))
    assert report.causes.by_code[("inventory", "timeout")] == [0, 0, 1, 0, 0, 0, 0]  # 16 March, 00:30 local
    assert AnalyticsDay.objects.filter(time_zone="Europe/Berlin").count() == 6


# --- cost ----------------------------------------------------------------------------------------------------
def _page_queries(client, url="/analytics/?days=30"):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_page_costs_the_same_queries_as_the_tables_grow(staff):
    health_rows()
    bulk(failures=50, retries=20, runs=80, health_changes=20, pauses=6, audit=10)
    first_small = _page_queries(staff)
    warm_small = _page_queries(staff)
    AnalyticsDay.objects.all().delete()
    bulk(failures=4000, retries=1500, runs=6000, health_changes=2000, pauses=300, audit=500, seed=3)
    first_large = _page_queries(staff)
    warm_large = _page_queries(staff)
    print(f"analytics page queries: first {first_large}, then {warm_large}")
    assert first_small == first_large <= 32
    assert warm_small == warm_large <= 18
    for url in ("/analytics/?days=90", "/analytics/?days=7&type=vendors", "/analytics.json?days=90"):
        assert _page_queries(staff, url) <= 32  # the 60 older days of the 90 are stored on this first view
        assert _page_queries(staff, url) == warm_large


# --- the page, JSON and CSV ----------------------------------------------------------------------------------
def test_anonymous_is_sent_to_log_in_and_cannot_read_json_or_csv(client):
    page = client.get("/analytics/")
    assert page.status_code == 302 and page["Location"].startswith("/admin/login/")
    assert client.get("/analytics.json").status_code == 403
    assert client.get("/analytics/outages.csv").status_code == 403


def test_a_user_who_is_not_staff_cannot_read_them(client):
    client.force_login(make_user("clerk", staff=False))
    assert client.get("/analytics/").status_code == 302
    assert client.get("/analytics.json").status_code == 403


def test_json_with_the_metrics_token(client, settings):
    seed_history()
    settings.METRICS_TOKEN = "s3cret-token-for-tests"
    with time_machine.travel(NOW, tick=False):
        ok = client.get(
            "/analytics.json?days=7&type=inventory", HTTP_AUTHORIZATION="Bearer s3cret-token-for-tests"
        )
        assert ok.status_code == 200
        data = ok.json()
        assert data["window"]["days"] == 7 and data["window"]["types"] == ["inventory"]
        assert [o["ended_by"] for o in data["outages"]] == ["person", "self", "retry"]
        assert data["recovery"][0]["median_seconds"] == 900
        assert client.get("/analytics.json", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
        assert (
            client.get("/analytics.json", HTTP_AUTHORIZATION="Basic s3cret-token-for-tests").status_code
            == 403
        )
        assert client.get("/analytics.json", HTTP_AUTHORIZATION="Bearer s3cret-tökén").status_code == 403
    settings.METRICS_TOKEN = ""
    assert client.get("/analytics.json", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_json_for_staff_and_bad_queries(staff):
    seed_history()
    with time_machine.travel(NOW, tick=False):
        data = staff.get("/analytics.json?days=7").json()
    assert data["recovery"][-1]["healed_without_person_share"] == 0.75
    assert data["causes"]["retry_after"][1]["p95_seconds"] == 120
    assert data["volume"]["durations"][0]["median_ms"] == 5000
    assert data["availability"][3]["seconds"]["paused"] == 115200
    assert staff.get("/analytics.json?days=5").status_code == 400
    assert staff.get("/analytics.json?type=nope").json() == {
        "error": "unknown type 'nope'; known: all, inventory, vendors, boms, purchase_orders"
    }


def test_page_shows_each_section(staff):
    seed_history()
    with time_machine.travel(NOW, tick=False):
        body = staff.get("/analytics/?days=7").content.decode()
        fallback = staff.get("/analytics/?days=5&type=nope")
    for section in (
        "availability",
        "recovery",
        "outages",
        "retries",
        "causes",
        "messages",
        "retry-after",
        "volume",
    ):
        assert f'id="{section}"' in body
    assert body.count('<tr data-outage="') == 7
    assert "by a retry, attempt 2" in body and "still open" in body
    assert "75 %" in body  # healed without a person
    assert body.count("<svg") >= 9
    assert "Retry-After N s" in body
    assert fallback.status_code == 200 and "last 30 days" in fallback.content.decode()


def test_dashboard_links_to_the_page(staff):
    assert 'href="/analytics/"' in staff.get("/").content.decode()


def _csv(response):
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_csv_tables(staff):
    seed_history()
    with time_machine.travel(NOW, tick=False):
        outages = _csv(staff.get("/analytics/outages.csv?days=7"))
        retries = _csv(staff.get("/analytics/retries.csv?days=7&type=inventory"))
        durations = staff.get("/analytics/durations.csv?days=7")
        missing = staff.get("/analytics/nope.csv")
    assert outages[0][:6] == ["data_type", "started_at", "ended_at", "seconds", "ended_by", "attempt"]
    assert outages[1][:6] == ["vendors", "2026-03-20T06:00:30+00:00", "", "21570.0", "open", ""]
    assert outages[-1][:6] == [
        "vendors",
        "2026-03-10T06:00:30+00:00",
        "2026-03-14T02:00:30+00:00",
        "331200.0",
        "retry",
        "2",
    ]
    assert len(outages) == 1 + 7
    assert retries[0] == [
        "day",
        "scheduled",
        "succeeded_attempt_1",
        "succeeded_attempt_2",
        "succeeded_attempt_3",
        "succeeded_attempt_4+",
        "exhausted",
        "cancelled",
    ]
    assert retries[2] == ["2026-03-15", "1", "0", "1", "0", "0", "0", "0"]
    assert durations["Content-Disposition"] == 'attachment; filename="finalesync-durations-7d-20260320.csv"'
    assert _csv(durations)[1] == ["inventory", "9", "5000", "9000"]
    assert missing.status_code == 404


def test_every_csv_table_downloads(staff):
    seed_history()
    with time_machine.travel(NOW, tick=False):
        for table in analytics_report(days=7).TABLES:
            rows = _csv(staff.get(f"/analytics/{table}.csv?days=7"))
            assert len(rows) >= 2, table


# --- Prometheus ----------------------------------------------------------------------------------------------
def test_time_to_recovery_histogram_on_metrics(client):
    seed_history()
    client.force_login(make_user("ops", superuser=True))  # anonymous scrapes get the status gauges only
    with time_machine.travel(NOW, tick=False):
        body = client.get("/metrics").content.decode()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    histogram = families["finalesync_time_to_recovery_seconds"]
    assert histogram.type == "histogram"

    def sample(suffix, data_type, le=None):
        return next(
            s.value
            for s in histogram.samples
            if s.name == "finalesync_time_to_recovery_seconds" + suffix
            and s.labels["data_type"] == data_type
            and s.labels.get("le") == le
        )

    # inventory: 600, 900, 3600 s — and the outage healed on 13 March, also within the runs kept
    assert sample("_count", "inventory") == 4
    assert sample("_sum", "inventory") == 600 + 900 + 3600 + 600
    assert sample("_bucket", "inventory", "900.0") == 3
    assert sample("_bucket", "inventory", "+Inf") == 4
    assert sample("_count", "vendors") == 1 and sample("_bucket", "vendors", "259200.0") == 0
    assert sample("_count", "purchase_orders") == 0


def test_stored_days_are_pruned(week):
    week.as_json()
    old = AnalyticsDay.objects.create(
        day=at(1, 0).date() - timedelta(days=daily.KEEP_DAYS + 30), time_zone="UTC", figures={}
    )
    analytics_report(days=7, now=NOW + timedelta(days=1)).as_json()
    assert not AnalyticsDay.objects.filter(pk=old.pk).exists()


def test_csv_cells_never_start_a_formula(staff):
    seed_history()
    run("boms", at(20, 8), "failed", code="bad_request", log='=HYPERLINK("http://evil.test","x")')
    with time_machine.travel(NOW, tick=False):
        rows = _csv(staff.get("/analytics/messages.csv?days=7&type=boms"))
    assert ['\'=HYPERLINK("http://evil.test","x")', "bad_request", "1", "boms:1"] in [r[:4] for r in rows]


def test_an_empty_database_reads_well(staff):
    body = staff.get("/analytics/").content.decode()
    assert "No outage in this window" in body
    assert "No failures in this window" in body
    assert "Finale did not ask us to wait" in body
    data = staff.get("/analytics.json").json()
    assert data["recovery"][-1]["outages"] == 0 and data["recovery"][-1]["median_seconds"] is None
    assert data["availability"][0]["recorded_since"] is None
    assert all(a["seconds"]["unknown"] > 0 and a["seconds"]["healthy"] == 0 for a in data["availability"])
