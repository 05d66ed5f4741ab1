"""Alert delivery (issue 9): a channel's URL path never shows anywhere, receivers' bodies are never echoed,
the test action needs the change permission, Slack text from Finale is inert, times carry their zone."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.utils import timezone

from finalesync.audit import ActionRefused, Actor
from finalesync.models import AuditLog
from health import alerts, notify
from health.actions import send_test_alert
from health.models import AlertChannel, Notification

from .opsdata import make_user

pytestmark = pytest.mark.django_db
SLACK_URL = "https://hooks.slack.com/services/T000/B000/SECRETPATH"
CHANGELIST = "/admin/health/alertchannel/"


class Receiver:
    """A webhook receiver on loopback answering `status` with a body that must never be echoed."""

    BODY = b"receiver-internal-detail-Hx71"

    def __init__(self, status: int):
        self.status = status
        self.requests: list[bytes] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.requests.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", str(len(Receiver.BODY)))
                self.end_headers()
                self.wfile.write(Receiver.BODY)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = (
            f"http://127.0.0.1:{self.server.server_address[1]}/hooks/PATHTOKEN-Jd83?key=QUERYTOKEN-Lm27"
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def refusing_network(monkeypatch):
    """Every outgoing connection is refused at the socket, as when hooks.slack.com cannot be reached: the
    real requests/urllib3 stack builds its exception (host and path reported apart)."""

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr("urllib3.util.connection.create_connection", refuse)


def test_a_slack_connection_error_never_shows_the_webhook_path(client, refusing_network, caplog, settings):
    caplog.set_level(logging.DEBUG)
    channel = AlertChannel.objects.create(name="ops-slack", kind="slack", url=SLACK_URL)
    root = make_user("root", superuser=True)
    client.force_login(root)

    # A real alert, delivered until it fails for good...
    [note] = alerts.emit(event=alerts.Event.UNHEALTHY, data_type="vendors", context={"error": "HTTP 401"})
    clock = timezone.now()
    for _ in range(settings.ALERT_DELIVERY_ATTEMPTS):
        notify.deliver(note.pk, now=clock)
        clock += timedelta(hours=1)
    note.refresh_from_db()
    assert note.status == "failed"
    # ...and the admin's test action.
    response = client.post(CHANGELIST, {"action": "send_test", "_selected_action": [channel.pk]}, follow=True)

    assert "hooks.slack.com" in note.last_error and "Connection refused" in note.last_error
    admin_messages = " ".join(str(m) for m in response.context["messages"])
    audit = " ".join(AuditLog.objects.values_list("message", flat=True))
    errors = " ".join(Notification.objects.values_list("last_error", flat=True))
    dashboard = client.get("/").content.decode()
    notifications_admin = client.get("/admin/health/notification/").content.decode()
    for text in (errors, audit, admin_messages, caplog.text, dashboard, notifications_admin):
        assert "SECRETPATH" not in text and "/services/" not in text
    assert "not sent" in admin_messages


def test_a_webhook_error_names_the_status_never_the_receivers_body_or_the_url(client):
    receiver = Receiver(status=500)
    try:
        channel = AlertChannel.objects.create(name="hook", kind="webhook", url=receiver.url)
        client.force_login(make_user("root", superuser=True))
        response = client.post(
            CHANGELIST, {"action": "send_test", "_selected_action": [channel.pk]}, follow=True
        )
        assert len(receiver.requests) == 1
        texts = [
            " ".join(str(m) for m in response.context["messages"]),
            Notification.objects.get().last_error,
            AuditLog.objects.get().message,
        ]
        assert "HTTP 500" in texts[1]
        for text in texts:
            for leak in ("receiver-internal-detail", "PATHTOKEN", "QUERYTOKEN", "/hooks/"):
                assert leak not in text
    finally:
        receiver.close()


def test_a_view_only_user_cannot_send_a_test_notification(client):
    receiver = Receiver(status=200)
    try:
        channel = AlertChannel.objects.create(name="hook", kind="webhook", url=receiver.url)
        viewer = make_user("viewer", perms=["health.view_alertchannel"])
        client.force_login(viewer)
        response = client.post(CHANGELIST, {"action": "send_test", "_selected_action": [channel.pk]})
        assert response.status_code in (200, 302, 403)
        with pytest.raises(ActionRefused):
            send_test_alert(channel_id=channel.pk, actor=Actor.for_user(viewer, AuditLog.Source.ADMIN))
        assert receiver.requests == []
        assert not Notification.objects.exists()
        assert not AuditLog.objects.filter(outcome__in=["success", "failed"]).exists()
    finally:
        receiver.close()


def test_slack_text_from_finale_is_escaped():
    hostile = "Bad row <!channel> see <https://evil.example/login|Finale login> & <@U123>"
    message = alerts.render_message(
        event=alerts.Event.UNHEALTHY, data_type="vendors", context={"error": hostile}, now=timezone.now()
    )
    note = Notification(payload=message["payload"])
    body = notify.slack_body(note)
    texts = [body["text"], body["blocks"][0]["text"]["text"]]
    for text in texts:
        assert "<!channel>" not in text and "<https://evil" not in text and "<@U123>" not in text
        assert "&lt;!channel&gt;" in text and "&amp;" in text
        assert text.count("<") == 1  # only our own link to the dashboard


def test_alert_times_carry_the_configured_zone(settings):
    settings.TIME_ZONE = "America/New_York"
    now = datetime(2026, 1, 15, 17, 30, tzinfo=UTC)
    retry_at = (now + timedelta(minutes=10)).isoformat()
    message = alerts.render_message(
        event=alerts.Event.DEGRADED,
        data_type="boms",
        context={"error": "HTTP 503", "retry_at": retry_at, "recoverable": True},
        now=now,
    )
    assert "Next retry at 12:40 EST." in message["text"]
    assert "12:30 EST" in message["text"] and "12:30 EST" in message["html"]
    assert "UTC" not in message["text"] + message["html"]
    assert json.dumps(message["payload"])  # still serialisable


def test_alert_times_stay_utc_when_the_zone_is_utc(settings):
    settings.TIME_ZONE = "UTC"
    now = datetime(2026, 1, 15, 17, 30, tzinfo=UTC)
    message = alerts.render_message(
        event=alerts.Event.DEGRADED,
        data_type="boms",
        context={"retry_at": (now + timedelta(minutes=10)).isoformat(), "recoverable": True},
        now=now,
    )
    assert "Next retry at 17:40 UTC." in message["text"] and "17:30 UTC" in message["text"]


def test_webhook_delivery_does_not_follow_redirects():
    receiver = Receiver(status=302)
    try:
        channel = AlertChannel.objects.create(name="hook", kind="webhook", url=receiver.url)
        [note] = alerts.emit(event=alerts.Event.TEST, data_type="all types", context={}, channels=[channel])
        notify.deliver(note.pk)
        note.refresh_from_db()
        assert "HTTP 302" in note.last_error
    finally:
        receiver.close()


def test_requests_is_what_builds_the_leaky_message():
    """Guard for the first test: without the redaction, requests' own text does carry the path."""
    with pytest.raises(requests.RequestException) as caught:
        requests.post("http://127.0.0.1:9/services/T000/B000/SECRETPATH", timeout=2)
    assert "SECRETPATH" in str(caught.value)
