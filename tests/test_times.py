"""Times for people (issue 12, item 7): one form of relative time ("4 min ago"), every time with its zone's
name (dashboard, admin lists and detail pages, history rows), TIME_ZONE from the environment, and a refresh
stamp that keeps its form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.db import models
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from finalesync import texts
from finalesync.models import AuditLog, SyncRun
from retries.models import FailureLog

from .conftest import ROOT, manage
from .opsdata import health_rows, make_user

pytestmark = pytest.mark.django_db
OUR_APPS = ("finalesync", "health", "retries")
WINTER = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 13:00 CET in Berlin
DJANGO_DEFAULT = re.compile(r"\b(a\.m\.|p\.m\.|noon|midnight)")


@pytest.fixture
def berlin(settings):
    settings.TIME_ZONE = "Europe/Berlin"


@pytest.fixture
def root(client):
    client.force_login(make_user("root", superuser=True))
    return client


def test_clock_and_stamp_name_the_zone(berlin):
    now = datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
    assert texts.clock(WINTER, now) == "13:00 CET"
    assert texts.clock(WINTER, now, seconds=True) == "13:00:00 CET"
    assert texts.clock(WINTER - timedelta(days=2), now) == "2026-01-13 13:00 CET"
    assert texts.stamp(WINTER) == "2026-01-15 13:00:00 CET"
    assert texts.stamp(datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == "2026-07-01 14:00:00 CEST"


def test_every_admin_list_shows_datetimes_with_their_zone():
    """No changelist of ours hands a datetime column to Django's zone-less formatting."""
    request = RequestFactory().get("/")
    raw = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        for name in model_admin.get_list_display(request):
            try:
                field = model._meta.get_field(name) if isinstance(name, str) else None
            except Exception:  # noqa: BLE001 - a method or an admin column, not a field
                field = None
            if isinstance(field, models.DateTimeField):
                raw.append(f"{model.__name__}.{name}")
    assert raw == []


def test_admin_list_and_detail_times_carry_the_zone(root, berlin):
    run = SyncRun.objects.create(
        data_type="inventory", trigger="cli", outcome="success", started_at=WINTER, duration_ms=350
    )
    listing = root.get(reverse("admin:finalesync_syncrun_changelist")).content.decode()
    assert "2026-01-15 13:00 CET" in listing
    assert not DJANGO_DEFAULT.search(listing)
    detail = root.get(reverse("admin:finalesync_syncrun_change", args=[run.pk])).content.decode()
    assert "2026-01-15 13:00:00 CET" in detail
    assert not DJANGO_DEFAULT.search(detail)


def test_admin_durations_read_as_on_the_dashboard(root):
    SyncRun.objects.create(data_type="inventory", trigger="cli", outcome="success", duration_ms=350)
    SyncRun.objects.create(data_type="vendors", trigger="cli", outcome="success", duration_ms=4_200)
    listing = root.get(reverse("admin:finalesync_syncrun_changelist")).content.decode()
    assert texts.duration(0.35) == "350 ms" and ">350 ms<" in listing
    assert ">4.2 s<" in listing


def test_history_rows_name_their_zone(berlin):
    run = SyncRun.objects.create(data_type="inventory", trigger="cli", outcome="success", started_at=WINTER)
    entry = AuditLog.objects.create(
        username="ops", source="cli", action="pause", target="inventory", outcome="success", created_at=WINTER
    )
    log = FailureLog.objects.create(
        data_type="inventory", error_message="x", trigger="cli", created_at=WINTER
    )
    for obj in (run, entry, log):
        assert str(obj).endswith("@ 2026-01-15 13:00:00 CET"), str(obj)


def test_connection_health_admin_shows_relative_and_zoned_times(root, berlin):
    health_rows()
    listing = root.get(reverse("admin:health_connectionhealth_changelist")).content.decode()
    # The exact time in the cell (today: the time and the zone), how long ago on hover, as on the dashboard.
    assert re.search(r'<time datetime="[^"]+" title="3 min ago">\d\d:\d\d CES?T</time>', listing)


def test_dashboard_refresh_stamp_has_the_same_form_as_the_live_part(root, berlin):
    health_rows()
    page = root.get(reverse("dashboard")).content.decode()
    live = root.get(reverse("dashboard-live")).content.decode()
    time = (
        r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T">(\d\d:\d\d:\d\d CES?T)</time>'
    )
    assert re.search(r'id="refreshed">updated ' + time + "</span>", page)
    # dashboard.js copies this text into the stamp after each refresh, so its form never changes.
    assert re.search(r"<span data-checked-at>" + time + "</span>", live)
    script = (ROOT / "health" / "static" / "health" / "dashboard.js").read_text()
    assert "toLocaleTimeString" not in script and "[data-checked-at]" in script


def test_relative_times_have_one_form(berlin):
    now = timezone.now()
    assert texts.ago(now - timedelta(minutes=4), now) == "4 min ago"
    assert texts.ago(now + timedelta(minutes=12), now) == "in 12 min"
    assert texts.ago(now - timedelta(seconds=2), now) == "just now"
    from health.grading import assess

    graded = assess(
        status="healthy",
        consecutive_failures=0,
        last_success_time=now - timedelta(hours=3),
        last_failure_time=None,
        interval=timedelta(minutes=60),
        now=now,
    )
    assert graded.stale and f"last success {texts.ago(now - timedelta(hours=3), now)}," in graded.reason


@pytest.mark.slow
def test_a_time_zone_that_does_not_exist_is_refused_in_one_line(tmp_path):
    import os

    env = {**os.environ, "DEBUG": "true", "TIME_ZONE": "Europe/Atlantis", "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "TIME_ZONE='Europe/Atlantis' is not a time zone name" in result.stderr
    assert "Traceback" not in result.stderr
