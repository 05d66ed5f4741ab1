"""The dashboard: who may see it and press its buttons, what it shows, and what it costs."""

import re
from datetime import date

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from finalesync.models import AuditLog, DataTypeConfig, SyncRun
from finalesync.sync import sync_data_type
from health.chart import failures_chart, nice_scale
from retries.models import RetryItem

from .opsdata import PASSWORD, bulk, health_rows, make_user

ACTION_URLS = [
    ("sync-now", {"data_type": "inventory"}),
    ("pause", {"data_type": "inventory"}),
    ("resume", {"data_type": "inventory"}),
    ("snooze", {"data_type": "inventory"}),
    ("retry-now", {"item_id": 1}),
    ("cancel-retry", {"item_id": 1}),
    ("requeue-retry", {"item_id": 1}),
    ("restore", {"run_id": 1}),
    ("confirm-sync", {"run_id": 1}),
]


@pytest.fixture
def staff(client):
    user = make_user(superuser=True)
    client.force_login(user)
    return user


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/dashboard/live/"])
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.django_db
@pytest.mark.parametrize("name, kwargs", ACTION_URLS)
def test_anonymous_cannot_press_a_button(client, name, kwargs):
    response = client.post(reverse(name, kwargs=kwargs))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_a_user_who_is_not_staff_is_sent_to_login(client):
    client.force_login(make_user("clerk", staff=False))
    assert client.get("/").status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("name, kwargs", ACTION_URLS)
def test_staff_without_the_permission_gets_403_on_an_action(client, name, kwargs):
    client.force_login(make_user("viewer"))
    assert client.get("/").status_code == 200
    response = client.post(reverse(name, kwargs=kwargs), {"hours": "1"})
    assert response.status_code == 403
    assert not AuditLog.objects.exists()
    assert not DataTypeConfig.objects.filter(paused=True).exists()


@pytest.mark.django_db
def test_staff_without_permissions_sees_no_buttons(client):
    health_rows()
    client.force_login(make_user("viewer"))
    body = client.get("/").content.decode()
    assert body.count('class="card ') == 4
    assert "Sync now</button>" not in body and "Retry now</button>" not in body


@pytest.mark.django_db
def test_permission_on_data_types_allows_pause_and_is_audited(client):
    user = make_user("operator", perms=["finalesync.change_datatypeconfig"])
    client.force_login(user)
    response = client.post(reverse("pause", args=["vendors"]), follow=True)
    assert response.status_code == 200
    assert "vendors paused" in response.content.decode()
    assert DataTypeConfig.objects.get(data_type="vendors").paused is True
    entry = AuditLog.objects.get()
    assert (entry.user, entry.action, entry.target, entry.outcome, entry.source) == (
        user,
        "pause",
        "vendors",
        "success",
        "dashboard",
    )
    # ...but not the retry queue
    assert client.post(reverse("retry-now", args=[1])).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("name, kwargs", ACTION_URLS[:-2])  # the last two show a review page on GET
def test_buttons_only_answer_post(client, staff, name, kwargs):
    assert client.get(reverse(name, kwargs=kwargs)).status_code == 405


@pytest.mark.django_db
def test_csrf_is_enforced_on_buttons():
    client = Client(enforce_csrf_checks=True)
    make_user(superuser=True)
    assert client.login(username="ops", password=PASSWORD)
    response = client.post(reverse("pause", args=["inventory"]))
    assert response.status_code == 403
    assert not DataTypeConfig.objects.filter(paused=True).exists()

    page = client.get("/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(reverse("pause", args=["inventory"]), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert DataTypeConfig.objects.get(data_type="inventory").paused is True


@pytest.mark.django_db
def test_empty_dashboard_reads_well(client, staff):
    body = client.get("/").content.decode()
    assert body.count('class="card ') == 4
    for label in ("Inventory", "Vendors", "Purchase orders"):
        assert label in body
    assert "The retry queue is empty" in body
    assert "No failures recorded" in body
    assert "No sync has run yet" in body
    assert "No manual actions yet" in body
    assert "Never checked" in body or "never checked" in body
    assert "No sync cycle schedule is installed" in body


@pytest.mark.django_db
def test_cards_show_status_grade_counts_and_shortened_errors(client, staff):
    health_rows()
    DataTypeConfig.objects.filter(data_type="purchase_orders").update(paused=True)
    body = client.get("/").content.decode()
    inventory = _card(body, "inventory")
    assert "tone-ok" in inventory and "Excellent" in inventory and "1,009" in inventory
    assert re.search(
        r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]+">3 min ago</time>', inventory
    )
    vendors = _card(body, "vendors")
    assert "tone-warn" in vendors and "Fair" in vendors and "HTTP 503 from Finale" in vendors
    boms = _card(body, "boms")
    assert "tone-bad" in boms and "Poor" in boms and "stale" in boms
    orders = _card(body, "purchase_orders")
    assert "tone-muted" in orders and ">paused<" in orders and "Resume</button>" in orders


def _card(body, name):
    start = body.index(f'data-type="{name}"')
    return body[start : body.index("</article>", start)]


@pytest.mark.django_db
def test_long_errors_are_shortened_and_redacted(client, staff):
    health_rows()
    from health.models import ConnectionHealth

    long = "Finale said no: https://user:hunter2secret@example.test/x " + "blah " * 100
    ConnectionHealth.objects.filter(pk="vendors").update(error_message=long)
    card = _card(client.get("/").content.decode(), "vendors")
    assert "hunter2secret" not in card
    assert "…" in card


@pytest.mark.django_db
def test_live_partial_renders_without_the_page_frame(client, staff):
    health_rows()
    body = client.get("/dashboard/live/").content.decode()
    assert body.count('class="card ') == 4
    assert "<html" not in body and "csrfmiddlewaretoken" in body


@pytest.mark.django_db
def test_static_css_and_js_are_served_with_debug_off(client, settings):
    settings.DEBUG = False
    for path in ("/static/health/dashboard.css", "/static/health/dashboard.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"".join(response.streaming_content)


@pytest.mark.django_db
def test_failed_retry_shows_retry_now_and_requeue(client, staff):
    health_rows()
    bulk(retries=6)
    failed = RetryItem.objects.filter(status="failed").first()
    body = client.get("/").content.decode()
    row = body[body.index(f'data-retry="{failed.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Retry now" in row and "Requeue" in row


@pytest.mark.django_db
def test_dashboard_queries_stay_under_20_whatever_the_table_sizes(client, staff):
    health_rows()
    bulk(failures=30, retries=20, runs=60, audit=25)
    with CaptureQueriesContext(connection) as small:
        assert client.get("/").status_code == 200
    bulk(failures=3000, retries=2000, runs=5000, audit=500, seed=2)
    with CaptureQueriesContext(connection) as large:
        body = client.get("/").content.decode()
    print(f"dashboard queries: {len(large)}")
    assert len(large) < 20, "\n".join(q["sql"][:200] for q in large.captured_queries)
    assert len(large) == len(small)
    assert body.count("<tr") >= 50 + 15 + 20  # runs, failures, audit entries listed
    with CaptureQueriesContext(connection) as live:
        client.get("/dashboard/live/")
    assert len(live) < 20


@pytest.mark.django_db
def test_restore_button_leads_to_a_confirmation_with_what_will_change(
    client, staff, finale, monkeypatch, django_capture_on_commit_callbacks
):
    from django_q.conf import Conf

    first = sync_data_type(data_type="vendors", force=True)
    assert first.outcome == "success"
    finale.mutate("vendors", ratio=0.3)
    assert sync_data_type(data_type="vendors", force=True).updated > 0
    assert reverse("restore", args=[first.run_id]) in client.get("/").content.decode()

    page = client.get(reverse("restore", args=[first.run_id])).content.decode()
    assert f"Restore vendors to the state after run #{first.run_id}" in page
    assert f"{first.item_count}" in page and "next scheduled sync" in page
    changed = re.search(r"0 rows? added,\s*(\d+) changed,\s*0 removed", page)
    assert changed and int(changed.group(1)) > 0

    monkeypatch.setattr(Conf, "SYNC", True)  # the worker runs the queued restore at once
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("restore", args=[first.run_id]), {"reason": "bad publish"}, follow=True
        )
    assert "queued" in response.content.decode()
    entry = AuditLog.objects.get(action="restore_backup")
    assert (entry.outcome, entry.reason) == ("queued", "bad publish")
    assert SyncRun.objects.get(trigger="restore").outcome == "success"
    again = client.get(reverse("restore", args=[first.run_id])).content.decode()
    assert "Nothing: the live rows already are this state." in again


def test_chart_scales_to_round_numbers_and_titles_each_bar():
    scales = [nice_scale(n) for n in (0, 1, 3, 7, 11, 180, 501)]
    assert scales == [(1, 1), (1, 1), (3, 1), (8, 2), (15, 5), (200, 50), (600, 200)]
    svg = failures_chart(
        {(date(2026, 3, 1), "inventory"): 3, (date(2026, 3, 2), "vendors"): 1},
        names=["inventory", "vendors"],
        last_day=date(2026, 3, 2),
    )
    assert svg.startswith("<svg") and svg.count("<rect") == 2
    assert "inventory: 3 failures" in svg and "vendors: 1 failure<" in svg
