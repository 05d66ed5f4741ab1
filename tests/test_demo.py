"""`make demo` (issue 12, item 8): it sets up, syncs every type from its own simulator, and points alert links
at the dashboard it serves (SITE_URL from --port), for itself and for the dashboard and scheduler it starts."""

from __future__ import annotations

import io
import os
import signal

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone

from finalesync.models import SyncRun
from health.alerts import render_message

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_demo_points_alert_links_at_its_own_dashboard(settings, monkeypatch):
    settings.SITE_URL = "http://127.0.0.1:8000"  # restored afterwards, with whatever the demo sets
    monkeypatch.setenv("SITE_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("FINALE_BASE_URL", "https://app.finaleinventory.com")
    previous = signal.getsignal(signal.SIGTERM)
    out = io.StringIO()
    try:
        call_command("demo", "--no-serve", "--port", "8123", "--sim-port", "0", "--rows", "50", stdout=out)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert django_settings.SITE_URL == "http://127.0.0.1:8123"
    assert os.environ["SITE_URL"] == "http://127.0.0.1:8123"  # what the dashboard and qcluster inherit
    message = render_message(event="degraded", data_type="inventory", context={}, now=timezone.now())
    assert message["payload"]["dashboard_url"] == "http://127.0.0.1:8123/"
    assert "http://127.0.0.1:8123/" in message["text"]
    # Every type's first sync worked against the demo's simulator.
    assert SyncRun.objects.filter(outcome="success").count() == 4, out.getvalue()
