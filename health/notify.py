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
from http import HTTPStatus
from urllib.parse import urlsplit

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
    """A delivery failed. Its message is built here from parts that never hold a secret (the channel's host
    and port, the error's kind, the operating system's reason, an HTTP status): never from a URL's path or
    query, which for Slack *is* the credential, and never from what the receiver answered."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature receivers should recompute and compare (constant time) with the header."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def where(url: str) -> str:
    """host[:port] of a channel URL: what an error may name."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "the channel's URL"
    if not host:
        return "the channel's URL"
    return f"{host}:{port}" if port else host


_KINDS = (
    # Most specific first: SSLError and ConnectTimeout are ConnectionErrors too.
    (requests.exceptions.SSLError, "TLS failed talking to {}"),
    (requests.exceptions.ConnectTimeout, "timed out connecting to {}"),
    (requests.exceptions.Timeout, "{} did not answer in time"),
    (requests.exceptions.ConnectionError, "could not connect to {}"),
    ((requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema),
     "the webhook URL is not valid ({})"),
)  # fmt: skip


def os_reason(exc: BaseException) -> str:
    """The operating system's words for what went wrong under `exc` ("Connection refused", "Name or
    service not known"), found by walking requests' and urllib3's wrapped exceptions. Only OSError's
    strerror is used: urllib3's own messages name the request path."""
    seen, todo = set(), [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and type(current).__module__ in ("builtins", "socket", "ssl"):
            text = getattr(current, "verify_message", None) or current.strerror
            if text:
                return str(text)
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        todo += [
            e
            for e in (getattr(current, "reason", None), current.__cause__, current.__context__)
            if isinstance(e, BaseException)
        ]
    return ""


def describe(exc: requests.RequestException, url: str) -> str:
    """A person's sentence for a failed request, without anything secret (see DeliveryError)."""
    place = where(url)
    for kinds, text in _KINDS:
        if isinstance(exc, kinds):
            message = text.format(place)
            break
    else:
        message = f"the request to {place} failed"
    reason = os_reason(exc)
    return f"{message} ({type(exc).__name__}{': ' + reason if reason else ''})"


def scrub(text: str, url: str) -> str:
    """Belt and braces over `describe`: take out the URL, its path and its query wherever they appear."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    pieces = [url]
    if parts is not None:
        # Short pieces ("/", "/x") would mangle ordinary words and hide nothing worth hiding.
        pieces += [p for p in (parts.path, parts.query) if len(p) >= 4]
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "[webhook URL]")
    return text


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
            # A receiver that redirects is misconfigured; following would re-send the alert elsewhere.
            allow_redirects=False,
        )
        status = response.status_code
        response.close()
    except requests.RequestException as exc:
        raise DeliveryError(describe(exc, url)) from None
    finally:
        session.close()
    if status >= 300:
        # The status only: a receiver's body may echo the request, or hold anything at all.
        try:
            phrase = f" {HTTPStatus(status).phrase}"
        except ValueError:
            phrase = ""
        raise DeliveryError(f"{where(url)} answered HTTP {status}{phrase}")


def send_email(channel: AlertChannel, note: Notification) -> None:
    recipients = [a.strip() for a in channel.email_to.replace(";", ",").split(",") if a.strip()]
    if not recipients:
        raise DeliveryError("the channel has no email address")
    message = EmailMultiAlternatives(note.subject, note.body, settings.DEFAULT_FROM_EMAIL, recipients)
    if note.html:
        message.attach_alternative(note.html, "text/html")
    message.send(fail_silently=False)


def slack_escape(text: str) -> str:
    """Slack's own escaping (its docs: & < > and nothing else), so `<!channel>`, `<@U123>` or a disguised
    `<https://…|label>` link in text from Finale shows as typed instead of acting."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(note: Notification) -> dict:
    p = note.payload
    icon = {"ok": ":white_check_mark:", "warning": ":warning:"}.get(p.get("severity"), ":rotating_light:")
    lines = [f"{icon} *{slack_escape(p.get('title') or '')}*"]
    if p.get("error"):
        # Quoted line by line: a newline in the error must not end the quote.
        lines += [f"> {slack_escape(line)}" for line in p["error"][:500].splitlines() if line.strip()]
    lines.append(slack_escape(p.get("did") or ""))
    lines.append(f"<{slack_escape(p.get('dashboard_url') or '')}|Open the dashboard>")
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
        if isinstance(exc, DeliveryError):
            error = str(exc)
        elif note.channel.kind == AlertChannel.Kind.EMAIL:
            error = f"{type(exc).__name__}: {redact(str(exc))}"  # the mail server's reply says what to fix
        else:
            error = f"unexpected {type(exc).__name__} while sending"
        error = scrub(redact(error), note.channel.url)[:1000] if note.channel.url else redact(error)[:1000]
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
