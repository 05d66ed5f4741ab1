"""Delivering stored notifications: email (Django's email backend), Slack incoming webhooks, and a generic
webhook signed with HMAC-SHA256. Each notification gets ALERT_DELIVERY_ATTEMPTS tries with backoff;
a failure is recorded on the notification and never reaches a sync.

Webhook signature: header `X-Finalesync-Signature: sha256=<hex>` where hex is
HMAC-SHA256(channel secret, f"{X-Finalesync-Timestamp}.{raw body}"), timestamp in Unix seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F
from django.utils import timezone

from finalesync import __version__
from finalesync.redact import redact

from .models import AlertChannel, Notification

log = logging.getLogger("finalesync.alerts")
SIGNATURE_HEADER = "X-Finalesync-Signature"
TIMESTAMP_HEADER = "X-Finalesync-Timestamp"


class DeliveryError(Exception):
    pass


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature receivers should recompute and compare (constant time) with the header."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _post(url: str, body: bytes, headers: dict) -> None:
    session = requests.Session()
    session.trust_env = False
    try:
        response = session.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"finalesync/{__version__}",
                **headers,
            },
            timeout=(5, settings.ALERT_HTTP_TIMEOUT),
        )
    except requests.RequestException as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    finally:
        session.close()
    if response.status_code >= 300:
        raise DeliveryError(f"receiver answered HTTP {response.status_code}: {response.text[:200]}")


def send_email(channel: AlertChannel, note: Notification) -> None:
    recipients = [a.strip() for a in channel.email_to.replace(";", ",").split(",") if a.strip()]
    if not recipients:
        raise DeliveryError("the channel has no email address")
    message = EmailMultiAlternatives(note.subject, note.body, settings.DEFAULT_FROM_EMAIL, recipients)
    if note.html:
        message.attach_alternative(note.html, "text/html")
    message.send(fail_silently=False)


def slack_body(note: Notification) -> dict:
    p = note.payload
    icon = {"ok": ":white_check_mark:", "warning": ":warning:"}.get(p.get("severity"), ":rotating_light:")
    lines = [f"{icon} *{p.get('title')}*"]
    if p.get("error"):
        lines.append(f"> {p['error'][:500]}")
    lines.append(p.get("did", ""))
    lines.append(f"<{p.get('dashboard_url')}|Open the dashboard>")
    text = "\n".join(line for line in lines if line)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def send_slack(channel: AlertChannel, note: Notification) -> None:
    if not channel.url:
        raise DeliveryError("the channel has no webhook URL")
    _post(channel.url, json.dumps(slack_body(note)).encode(), {})


def send_webhook(channel: AlertChannel, note: Notification) -> None:
    if not channel.url:
        raise DeliveryError("the channel has no webhook URL")
    body = json.dumps({"id": note.pk, **note.payload}, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {TIMESTAMP_HEADER: timestamp, "X-Finalesync-Event": note.event}
    if channel.signing_secret:
        headers[SIGNATURE_HEADER] = sign(channel.signing_secret, timestamp, body)
    _post(channel.url, body, headers)


SENDERS = {
    AlertChannel.Kind.EMAIL: send_email,
    AlertChannel.Kind.SLACK: send_slack,
    AlertChannel.Kind.WEBHOOK: send_webhook,
}


def backoff(attempts: int) -> timedelta:
    """1, 4, 16 minutes... after the first, second, third failed attempt."""
    return timedelta(seconds=settings.ALERT_RETRY_BASE_SECONDS * (4 ** (attempts - 1)))


def deliver(notification_id: int, *, now: datetime | None = None) -> str:
    """Try to send one pending notification. Returns its new status. Claims it with a conditional UPDATE,
    so the task and the sweep never send it twice."""
    now = now or timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, status=Notification.Status.PENDING, next_attempt_at__lte=now
    ).update(status=Notification.Status.SENDING, attempts=F("attempts") + 1, updated_at=now)
    note = Notification.objects.select_related("channel").get(pk=notification_id)
    if not claimed:
        return note.status
    try:
        SENDERS[note.channel.kind](note.channel, note)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded; the sync never sees it
        error = redact(str(exc))[:1000]
        if note.channel.url:
            error = error.replace(note.channel.url, "[webhook URL]")
        final = note.attempts >= settings.ALERT_DELIVERY_ATTEMPTS
        Notification.objects.filter(pk=note.pk).update(
            status=Notification.Status.FAILED if final else Notification.Status.PENDING,
            last_error=error,
            next_attempt_at=now + backoff(note.attempts),
            updated_at=now,
        )
        log.warning(
            "notification %s via %s failed (attempt %s): %s", note.pk, note.channel, note.attempts, error
        )
        return Notification.Status.FAILED if final else Notification.Status.PENDING
    Notification.objects.filter(pk=note.pk).update(
        status=Notification.Status.SENT, sent_at=now, updated_at=now, last_error=""
    )
    return Notification.Status.SENT


def deliver_due(*, now: datetime | None = None, limit: int = 50) -> dict:
    """The sweep (runs with the retry processor): send pending notifications whose time has come, and put
    back ones whose sender died mid-send."""
    now = now or timezone.now()
    Notification.objects.filter(
        status=Notification.Status.SENDING, updated_at__lt=now - timedelta(minutes=10)
    ).update(status=Notification.Status.PENDING)
    ids = list(
        Notification.objects.filter(status=Notification.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    results = [deliver(pk, now=now) for pk in ids]
    return {status: results.count(status) for status in set(results)}
