"""Alerts end to end: once per change, reminders while broken, email (locmem and real SMTP), Slack and signed
webhooks through local receivers, delivery retries that never touch a sync."""

import hashlib
import hmac
import http.server
import json
import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from finalesync.models import DataTypeConfig
from finalesync.sync import ensure_configs, sync_data_type
from health import alerts, notify
from health.models import AlertChannel, Notification

from .conftest import SIM_SECRET


class Receiver:
    """A local HTTP receiver on loopback that records POSTs and answers with `status`."""

    def __init__(self, status=200):
        self.status = status
        self.requests = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def deliver_all():
    for note in Notification.objects.filter(status="pending"):
        notify.deliver(note.pk)


def events():
    return list(Notification.objects.order_by("id").values_list("event", flat=True))


@pytest.fixture
def email_channel(db, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://sync.example.com"
    return AlertChannel.objects.create(
        name="ops", kind="email", email_to="ops@example.com, buyer@example.com"
    )


@pytest.mark.django_db
def test_ten_failures_alert_once_remind_after_six_hours_and_recover_once(finale, email_channel):
    sync_data_type(data_type="inventory", force=True)
    assert events() == []  # a first success is not a recovery
    finale.set_fault("inventory", "http_503")
    for _ in range(10):
        sync_data_type(data_type="inventory", trigger="schedule", force=True)
    assert events() == ["degraded", "unhealthy"]
    assert alerts.send_reminders() == []  # not yet
    with time_machine.travel(timezone.now() + timedelta(hours=6, minutes=1)):
        assert [n.event for n in alerts.send_reminders()] == ["reminder"]
        assert alerts.send_reminders() == []  # once per period
    finale.clear_faults()
    sync_data_type(data_type="inventory", trigger="schedule", force=True)
    sync_data_type(data_type="inventory", trigger="schedule", force=True)
    assert events() == ["degraded", "unhealthy", "reminder", "recovered"]


@pytest.mark.django_db
def test_email_says_which_type_what_happened_what_we_did_and_links_the_dashboard(finale, email_channel):
    sync_data_type(data_type="vendors", force=True)
    finale.set_fault("vendors", "http_401")
    sync_data_type(data_type="vendors", trigger="schedule")
    deliver_all()
    [message] = mail.outbox
    assert message.subject == "[finalesync] Vendors is unhealthy"
    assert message.to == ["ops@example.com", "buyer@example.com"]
    assert "HTTP 401" in message.body
    assert "Kept the previous data. No automatic retry: this needs a person." in message.body
    assert "API key and secret" in message.body  # the advice
    assert "https://sync.example.com/" in message.body
    html = message.alternatives[0][0]
    assert "<h2" in html and "https://sync.example.com/" in html
    assert SIM_SECRET not in message.body + html


@pytest.mark.django_db
def test_recoverable_failure_email_names_the_next_retry_time(finale, email_channel):
    sync_data_type(data_type="boms", force=True)
    finale.set_fault("boms", "http_500")
    result = sync_data_type(data_type="boms", trigger="schedule")
    deliver_all()
    [message] = mail.outbox
    assert "is degraded" in message.subject
    retry_at = timezone.datetime.fromisoformat(result.retry_at)
    assert f"Next retry at {retry_at:%H:%M} UTC." in message.body


@pytest.mark.django_db
def test_rollback_and_suspicious_refusal_are_announced(finale, email_channel):
    sync_data_type(data_type="inventory", force=True)
    finale.set_fault("inventory", "drop_60")
    sync_data_type(data_type="inventory", trigger="schedule")
    assert "suspicious" in events() and "unhealthy" in events()
    finale.set_fault("inventory", "empty")
    sync_data_type(data_type="inventory", force=True)
    assert events().count("rolled_back") == 1


@pytest.mark.django_db
def test_nothing_is_sent_while_paused_or_snoozed(finale, email_channel):
    ensure_configs()
    DataTypeConfig.objects.filter(data_type="boms").update(paused=True)
    DataTypeConfig.objects.filter(data_type="vendors").update(
        snoozed_until=timezone.now() + timedelta(hours=1)
    )
    finale.set_fault("boms", "http_401")
    finale.set_fault("vendors", "http_401")
    sync_data_type(data_type="boms", force=True)
    sync_data_type(data_type="vendors", force=True)
    assert events() == []


@pytest.mark.django_db
def test_exhausted_retries_are_announced(finale, email_channel, settings):
    from retries.queue import process_retries

    finale.set_fault("purchase_orders", "http_502")
    sync_data_type(data_type="purchase_orders", trigger="schedule")
    clock = timezone.now()
    for _ in range(3):
        clock += timedelta(hours=3)
        with time_machine.travel(clock):
            process_retries()
    assert "retry_exhausted" in events()
    note = Notification.objects.get(event="retry_exhausted")
    assert "Gave up after 3 retries" in note.body


@pytest.mark.django_db
def test_email_through_a_real_smtp_server_on_loopback(finale, settings):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        AlertChannel.objects.create(name="smtp", kind="email", email_to="ops@example.com")
        finale.set_fault("inventory", "html")
        sync_data_type(data_type="inventory", force=True)
        deliver_all()
    finally:
        controller.stop()
    [envelope] = received
    assert envelope.rcpt_tos == ["ops@example.com"]
    text = envelope.content.decode()
    assert "Subject: [finalesync] Inventory is unhealthy" in text
    assert "web page" in text and SIM_SECRET not in text
    assert Notification.objects.get().status == "sent"


@pytest.mark.django_db
def test_slack_payload_is_slack_format(finale, receiver):
    AlertChannel.objects.create(name="slack", kind="slack", url=receiver.url)
    finale.set_fault("vendors", "http_404")
    sync_data_type(data_type="vendors", force=True)
    deliver_all()
    [(headers, body)] = receiver.requests
    payload = json.loads(body)
    assert set(payload) == {"text", "blocks"}
    assert "*Vendors is unhealthy*" in payload["text"] and "HTTP 404" in payload["text"]
    assert payload["blocks"][0]["type"] == "section"


@pytest.mark.django_db
def test_webhook_is_signed_with_hmac_sha256(finale, receiver):
    AlertChannel.objects.create(name="hook", kind="webhook", url=receiver.url, signing_secret="whsec-123456")
    finale.set_fault("boms", "http_403")
    sync_data_type(data_type="boms", force=True)
    deliver_all()
    [(headers, body)] = receiver.requests
    timestamp = headers["X-Finalesync-Timestamp"]
    expected = (
        "sha256=" + hmac.new(b"whsec-123456", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    assert hmac.compare_digest(headers["X-Finalesync-Signature"], expected)
    payload = json.loads(body)
    assert (payload["event"], payload["data_type"], payload["severity"]) == ("unhealthy", "boms", "critical")
    assert "whsec-123456" not in body.decode()


@pytest.mark.django_db
def test_receiver_answering_500_is_retried_then_failed_and_the_sync_is_unaffected(finale):
    failing = Receiver(status=500)
    try:
        AlertChannel.objects.create(name="broken", kind="webhook", url=failing.url, signing_secret="k" * 10)
        finale.set_fault("inventory", "http_401")
        result = sync_data_type(data_type="inventory", force=True)
        assert result.outcome == "failed" and result.error_code == "auth"  # the sync's own outcome
        note = Notification.objects.get()
        assert notify.deliver(note.pk) == "pending"
        note.refresh_from_db()
        assert (note.attempts, "HTTP 500" in note.last_error) == (1, True)
        assert notify.deliver(note.pk) == "pending"  # not due yet: backoff
        clock = timezone.now()
        for minutes in (2, 10):
            clock += timedelta(minutes=minutes)
            notify.deliver_due(now=clock)
        note.refresh_from_db()
        assert (note.status, note.attempts) == ("failed", 3)
        assert len(failing.requests) == 3
        assert failing.url not in note.last_error
    finally:
        failing.close()


@pytest.mark.django_db
def test_channel_filters_by_event_kind_and_data_type(finale, receiver):
    AlertChannel.objects.create(
        name="po only", kind="slack", url=receiver.url, data_types=["purchase_orders"]
    )
    AlertChannel.objects.create(name="recoveries", kind="slack", url=receiver.url, event_kinds=["recovered"])
    finale.set_fault("inventory", "http_401")
    sync_data_type(data_type="inventory", force=True)
    assert Notification.objects.count() == 0
    finale.set_fault("purchase_orders", "http_401")
    sync_data_type(data_type="purchase_orders", force=True)
    assert list(Notification.objects.values_list("channel__name", flat=True)) == ["po only"]


@pytest.mark.django_db
def test_environment_channel_is_created_and_kept_in_step(settings):
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    settings.ALERT_WEBHOOK_SECRET = "env-secret-99"
    alerts.ensure_environment_channel()
    channel = AlertChannel.objects.get(from_environment=True)
    assert (channel.kind, channel.url, channel.signing_secret) == (
        "webhook",
        "http://127.0.0.1:9/hook",
        "env-secret-99",
    )
    settings.ALERT_WEBHOOK_URL = ""
    alerts.ensure_environment_channel()
    assert not AlertChannel.objects.exists()


@pytest.mark.django_db
def test_admin_send_test_action_delivers_and_reports_failures(client, receiver):
    from django.contrib.auth.models import User

    from finalesync.models import AuditLog

    admin_user = User.objects.create_superuser("boss", "boss@example.com", "pw-123456789")
    client.force_login(admin_user)
    good = AlertChannel.objects.create(name="good", kind="webhook", url=receiver.url, signing_secret="s" * 12)
    broken = AlertChannel.objects.create(
        name="broken", kind="slack", url="http://127.0.0.1:9/nothing-listens"
    )
    response = client.post(
        "/admin/health/alertchannel/",
        {"action": "send_test", "_selected_action": [good.pk, broken.pk]},
        follow=True,
    )
    texts = [str(m) for m in response.context["messages"]]
    assert "Test notification to good: sent" in texts
    assert any(t.startswith("Test notification to broken: not sent") for t in texts)
    assert json.loads(receiver.requests[0][1])["event"] == "test"
    outcomes = dict(AuditLog.objects.values_list("target", "outcome"))
    assert outcomes == {"alert channel good": "success", "alert channel broken": "failed"}


@pytest.mark.django_db
def test_failed_deliveries_show_on_the_dashboard(client):
    from django.contrib.auth.models import User

    channel = AlertChannel.objects.create(name="pager", kind="slack", url="http://127.0.0.1:9/x")
    Notification.objects.create(
        channel=channel, event="unhealthy", data_type="boms", subject="s", body="b", status="failed",
        attempts=3, last_error="receiver answered HTTP 500: oops",
    )  # fmt: skip
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw-123456789"))
    page = client.get("/").content.decode()
    assert "Alert deliveries" in page and "1 failed" in page
    assert "receiver answered HTTP 500" in page and "pager" in page
