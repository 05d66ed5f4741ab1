"""The dashboard in a real browser: Debian's chromium driven by Playwright (no browser download) against a
live server. Log in, see the four cards, press Retry now on a failed item, see the message and the new state,
and watch the page refresh itself without a reload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from django_q.tasks import async_task

from finalesync.sync import sync_data_type
from health.models import ConnectionHealth
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
    """A picture of the dashboard with real syncs behind it. FINALESYNC_SCREENSHOT=docs/dashboard.png saves
    it for the README; otherwise it goes to a temporary folder (and is still checked to exist)."""
    make_user("ops", superuser=True)
    for name in ("inventory", "vendors", "boms", "purchase_orders"):
        assert sync_data_type(data_type=name, force=True, user="ops").outcome == "success"
    finale.mutate("inventory", ratio=0.05)
    sync_data_type(data_type="inventory", user="ops")
    bulk(failures=60, seed=4)  # two weeks of history for the chart
    finale.set_fault("vendors", "http_503")
    sync_data_type(data_type="vendors")
    finale.set_fault("purchase_orders", "http_401")
    sync_data_type(data_type="purchase_orders")
    finale.set_fault("boms", "drop_60")
    sync_data_type(data_type="boms")
    finale.clear_faults()
    call_command("setupschedules", verbosity=0)
    async_task("finalesync.tasks.sync_cycle", sync=True)  # a cycle ran (nothing was due)

    page = browser.new_page(viewport={"width": 1440, "height": 1500}, device_scale_factor=1)
    log_in(page, live_server.url)
    page.locator("article.card").first.wait_for()
    target = Path(os.environ.get("FINALESYNC_SCREENSHOT") or tmp_path / "dashboard.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=False)
    assert target.stat().st_size > 20_000
