"""The dashboard in a real browser: Debian's chromium driven by Playwright (no browser download) against a
live server. Log in, see the four cards, press Retry now on a failed item, see the message and the new state,
and watch the page refresh itself without a reload."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from django_q.tasks import async_task

from finalesync.models import AuditLog, DataTypeConfig, SyncRun
from finalesync.sync import sync_data_type
from health.models import AlertChannel, ConnectionHealth, Notification
from retries.models import RetryItem
from retries.queue import enqueue_retry

from .opsdata import PASSWORD, bulk, health_rows, make_user

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"no system chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed")


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
            # Inside Playwright's loop Django keeps the test's connections per context (asgiref Local):
            # close them here, or the test database cannot be dropped at the end of the session.
            connections.close_all()


def log_in(page, base_url):
    page.goto(base_url + "/")
    assert "/admin/login/" in page.url  # anonymous: sent to log in first
    page.fill("#id_username", "ops")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(base_url + "/")


@pytest.mark.django_db(transaction=True)
def test_operator_retries_a_failed_item_and_sees_the_outcome(live_server, browser, settings):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    make_user("ops", superuser=True)
    health_rows()
    item = enqueue_retry(data_type="vendors", error="Finale failed serving the vendors report (HTTP 503)")
    RetryItem.objects.filter(pk=item.pk).update(
        status="failed", retry_count=3, resolution="gave up after 3 retries", completed_at=timezone.now()
    )
    expect = sync_api.expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    log_in(page, live_server.url)
    expect(page.locator("article.card")).to_have_count(4)
    for label in ("Inventory", "Vendors", "Bills of materials", "Purchase orders"):
        expect(page.locator("article.card h2", has_text=label)).to_have_count(1)

    row = page.locator(f'tr[data-retry="{item.pk}"]')
    expect(row.locator(".badge")).to_have_text("failed")
    page.evaluate("window.__sameDocument = true")
    row.get_by_role("button", name="Retry now").click()

    expect(page.locator(".msg-success")).to_contain_text(f"Retry #{item.pk} of sync vendors is due now")
    expect(page.locator(f'tr[data-retry="{item.pk}"] .badge')).to_have_text("pending")
    item.refresh_from_db()
    assert (item.status, item.retry_count) == ("pending", 0)

    # The page refreshes itself in place: a change in the database shows up without a navigation.
    page.evaluate("window.__sameDocument = true")
    ConnectionHealth.objects.filter(pk="inventory").update(
        status="unhealthy",
        consecutive_failures=1,
        error_message="HTTP 401 from Finale",
        last_failure_time=timezone.now(),
    )
    inventory = page.locator('article.card[data-type="inventory"]')
    expect(inventory).to_have_class("card tone-bad", timeout=10_000)
    expect(inventory.locator(".state")).to_contain_text("HTTP 401 from Finale")
    assert page.evaluate("window.__sameDocument === true")


@pytest.mark.django_db(transaction=True)
def test_dashboard_screenshot_with_simulator_data(live_server, browser, finale, tmp_path):
    """A picture of the dashboard, 1400 px wide, with real syncs behind it: a type retrying, one waiting for
    new credentials, a refused suspicious sync, two weeks of failures. FINALESYNC_SCREENSHOT=docs/dashboard.png
    saves it for the README; otherwise it goes to a temporary folder (and is still checked)."""
    seed_realistic(finale)
    call_command("setupschedules", verbosity=0)
    async_task("finalesync.tasks.sync_cycle", sync=True)  # a cycle ran (nothing was due)

    page = browser.new_page(viewport={"width": 1400, "height": 1400}, device_scale_factor=1)
    log_in(page, live_server.url)
    page.locator("article.card").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    sync_api.expect(page.locator("article.card .state")).to_have_count(4)
    target = Path(os.environ.get("FINALESYNC_SCREENSHOT") or tmp_path / "dashboard.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=False)
    assert target.stat().st_size > 20_000


def seed_realistic(finale):
    """Real syncs of every type, a refused suspicious sync (boms), a failure that needs a person
    (purchase orders), a queued retry (vendors), weeks of history and an alert channel with a failed delivery."""
    make_user("ops", superuser=True)
    for name in ("inventory", "vendors", "boms", "purchase_orders"):
        assert sync_data_type(data_type=name, force=True, user="ops").outcome == "success"
    finale.mutate("inventory", ratio=0.05)
    sync_data_type(data_type="inventory", user="ops")
    bulk(failures=60, runs=40, audit=30, seed=4)
    finale.set_fault("vendors", "http_503")
    sync_data_type(data_type="vendors")
    finale.set_fault("purchase_orders", "http_401")
    sync_data_type(data_type="purchase_orders")
    finale.set_fault("boms", "drop_60")
    refused = sync_data_type(data_type="boms")
    finale.clear_faults()
    channel = AlertChannel.objects.create(
        name="Purchasing on Slack", kind="slack", event_kinds=["unhealthy", "recovered"], data_types=["boms"]
    )
    Notification.objects.create(
        channel=channel,
        event="unhealthy",
        data_type="purchase_orders",
        subject="finalesync: purchase orders is unhealthy — Finale rejected the API key/secret (HTTP 401)",
        body="…",
        status="failed",
        attempts=3,
        last_error="could not connect to hooks.slack.com (ConnectionError: Connection refused)",
    )
    return refused


@pytest.mark.django_db(transaction=True)
def test_admin_list_pages_fit_a_1400_px_screen(live_server, browser, finale):
    """Every changelist of ours: no sideways scrolling of the page, and the table fits its box (long texts
    wrap; the last column, often a button, is on screen)."""
    from django.contrib import admin

    seed_realistic(finale)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    log_in(page, live_server.url)
    too_wide = {}
    for model in admin.site._registry:
        if model._meta.app_label not in ("finalesync", "health", "retries"):
            continue
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        page.goto(live_server.url + url)
        widths = page.evaluate(
            """() => {
                const results = document.querySelector('#changelist .results');
                return {
                    page: document.documentElement.scrollWidth,
                    table: results ? results.scrollWidth : 0,
                    box: results ? results.clientWidth : 0,
                };
            }"""
        )
        if widths["page"] > 1400 or widths["table"] > widths["box"] + 1:
            too_wide[url] = widths
    assert too_wide == {}


@pytest.mark.django_db(transaction=True)
def test_dashboard_fits_a_phone_and_its_refresh_stamp_keeps_its_form(live_server, browser, finale, settings):
    """At 390 × 844 (a phone) nothing scrolls sideways: the header wraps, tables scroll inside their panels.
    The refresh stamp reads 'updated 14:35:07 UTC' before and after the page refreshes itself."""
    settings.DASHBOARD_REFRESH_SECONDS = 1
    seed_realistic(finale)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    log_in(page, live_server.url)
    page.locator("article.card").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    header = page.locator("header.topbar")
    assert header.evaluate("e => e.scrollWidth <= e.clientWidth")
    for link in ("Dashboard", "Admin", "Health JSON", "Metrics", "Log out"):
        box = header.get_by_text(link, exact=True).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, link
    if os.environ.get("FINALESYNC_SCREENSHOT"):
        page.screenshot(path=str(Path(os.environ["FINALESYNC_SCREENSHOT"]).with_name("dashboard-phone.png")))

    stamp = page.locator("#refreshed")
    form = r"^updated \d\d:\d\d:\d\d UTC$"
    sync_api.expect(stamp).to_have_text(re.compile(form))
    first = stamp.inner_text()
    sync_api.expect(stamp).not_to_have_text(first, timeout=10_000)  # refreshed in place
    sync_api.expect(stamp).to_have_text(re.compile(form))


@pytest.mark.django_db(transaction=True)
def test_operator_reviews_a_refused_sync_and_restores_an_earlier_state(live_server, browser, finale):
    """From the dashboard: "Review and apply…" on the refused BOM sync shows its evidence and queues it with a
    reason; "restore…" on an earlier inventory run shows what would change, warns about the next sync and
    offers to pause, and queues the restore."""
    refused = seed_realistic(finale)
    assert refused.outcome == "rolled_back"
    expect = sync_api.expect
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    log_in(page, live_server.url)

    # The review-and-apply page of the refused suspicious sync.
    row = page.locator("#failures tr", has_text="suspicious_drop")
    row.get_by_role("link", name="Review and apply…").click()
    page.wait_for_url(f"**/runs/{refused.run_id}/confirm/")
    panel = page.locator("section.panel")
    expect(panel.locator("h3")).to_have_text(f"Apply the refused boms sync (run #{refused.run_id})?")
    expect(panel).to_contain_text("from 223 to 82")
    expect(panel).to_contain_text("removed")
    expect(panel.locator("tr", has_text="Why refused")).to_contain_text("drop")
    page.fill("#reason", "discontinued most kits on purpose")
    page.get_by_role("button", name="Apply this sync once").click()
    page.wait_for_url(f"{live_server.url}/#runs")
    expect(page.locator(".msg-success")).to_contain_text("Confirmed sync of boms queued")
    entry = AuditLog.objects.get(action="confirm_sync")
    assert (entry.outcome, entry.reason) == ("queued", "discontinued most kits on purpose")

    # The restore confirmation page of the first inventory run (the mutation changed rows since).
    first = SyncRun.objects.filter(data_type="inventory", outcome="success").order_by("pk").first()
    page.goto(f"{live_server.url}/runs/{first.pk}/restore/")
    panel = page.locator("section.panel")
    expect(panel.locator("h3")).to_have_text(f"Restore inventory to the state after run #{first.pk}?")
    expect(panel.locator("tr", has_text="What will change")).to_contain_text("changed")
    expect(panel.locator("tr", has_text="Back to")).to_contain_text("CLI")
    expect(panel.locator(".warning")).to_contain_text("The next scheduled sync brings Finale's data back")
    expect(panel.locator("input[name=pause]")).to_be_checked()
    page.fill("#reason", "the mutation was a test")
    page.get_by_role("button", name="Restore inventory").click()
    expect(page.locator(".msg-success")).to_contain_text("Restore of inventory to the state after run")
    assert DataTypeConfig.objects.get(data_type="inventory").paused
    assert AuditLog.objects.get(action="restore_backup").reason == "the mutation was a test"


@pytest.mark.django_db(transaction=True)
def test_analytics_page_shows_its_charts_and_outages(live_server, browser):
    """The operator goes from the dashboard to the analytics page and sees every chart drawn, the outages
    with links to their runs, and a 7-day window of one type."""
    import time_machine

    from .analyticsdata import NOW, seed_history

    make_user("ops", superuser=True)
    seed_history()
    expect = sync_api.expect
    # The clock of the server thread and of this test: the seeded week ends at NOW.
    with time_machine.travel(NOW, tick=True):
        page = browser.new_page(viewport={"width": 1440, "height": 2400}, device_scale_factor=1)
        log_in(page, live_server.url)
        page.get_by_role("link", name="Retry analytics").click()
        page.wait_for_url(f"{live_server.url}/analytics/")
        page.get_by_role("link", name="7 days").click()
        expect(page.locator("h1")).to_have_text("Retry analytics")
        for chart in (
            "#availability svg",
            "#ttr svg",
            "#retries svg",
            "#runs",
            "#changed",
            "#causes-inventory",
        ):
            expect(page.locator(chart)).to_be_visible()
        assert page.locator("#availability svg rect[data-state]").count() >= 4 * 7
        assert page.locator("#runs rect").count() > 0 and page.locator("#retries circle").count() == 7
        expect(page.locator("#outages tbody tr")).to_have_count(7)
        first = page.locator("#outages tbody tr").first
        expect(first).to_contain_text("still open")
        expect(page.locator("#outages tbody tr", has_text="by a retry, attempt 2")).to_have_count(2)

        # One type: the selector keeps the window, and the outage links open the admin on its runs.
        page.select_option("#type", "inventory")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("#outages tbody tr")).to_have_count(3)
        expect(page.locator(".overall-sub")).to_contain_text("Inventory · last 7 days")
        page.locator('#outages tr:has-text("by itself") a', has_text="runs").click()
        expect(page.locator("#result_list tbody tr")).to_have_count(3)


@pytest.mark.django_db(transaction=True)
def test_analytics_screenshot_with_a_simulated_month(live_server, browser, tmp_path):
    """A picture of the analytics page over a simulated month. FINALESYNC_ANALYTICS_SCREENSHOT=docs/analytics.png
    saves it for the README; otherwise it goes to a temporary folder (and is still checked to exist)."""
    import time_machine

    from .analyticsdata import NOW, simulate_month

    make_user("ops", superuser=True)
    simulate_month(now=NOW)
    with time_machine.travel(NOW, tick=True):
        page = browser.new_page(viewport={"width": 1440, "height": 1900}, device_scale_factor=1)
        log_in(page, live_server.url)
        page.goto(live_server.url + "/analytics/?days=30")
        sync_api.expect(page.locator("#availability svg")).to_be_visible()
        assert page.locator("#outages tbody tr").count() > 10
        target = Path(os.environ.get("FINALESYNC_ANALYTICS_SCREENSHOT") or tmp_path / "analytics.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=False)
    assert target.stat().st_size > 20_000
