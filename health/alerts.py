"""Alerts: turning health changes into notifications — once per change, reminders while broken, no storms.

Events come from three places: every sync run (`after_run`: degraded, unhealthy, recovered, rolled back,
refused as suspicious), the retry queue (`retry_exhausted`), and the reminder sweep (`send_reminders`); the
first two arrive as signals (health/receivers.py).
Creating a notification is a few inserts; delivery happens in a django-q2 task (health/notify.py), so a
slow or broken receiver never touches a sync.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from finalesync.datatypes import registry
from finalesync.models import DataTypeConfig, SyncRun
from finalesync.redact import redact
from retries.models import OPEN_STATUSES, RetryItem

from .models import AlertChannel, AlertState, ConnectionHealth, HealthStatus, Notification

log = logging.getLogger("finalesync.alerts")


class Event:
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    RECOVERED = "recovered"
    RETRY_EXHAUSTED = "retry_exhausted"
    ROLLED_BACK = "rolled_back"
    SUSPICIOUS = "suspicious"
    REMINDER = "reminder"
    TEST = "test"

    ALL = (DEGRADED, UNHEALTHY, RECOVERED, RETRY_EXHAUSTED, ROLLED_BACK, SUSPICIOUS, REMINDER)
    TITLES = {
        DEGRADED: "is degraded",
        UNHEALTHY: "is unhealthy",
        RECOVERED: "has recovered",
        RETRY_EXHAUSTED: "failed for good: retries exhausted",
        ROLLED_BACK: "was rolled back",
        SUSPICIOUS: "sync refused as suspicious",
        REMINDER: "is still unhealthy",
        TEST: "test notification",
    }
    SEVERITY = {DEGRADED: "warning", RECOVERED: "ok", TEST: "info"}


STATUS_EVENTS = {HealthStatus.DEGRADED: Event.DEGRADED, HealthStatus.UNHEALTHY: Event.UNHEALTHY}
SUSPICIOUS_CODES = {"suspicious_drop", "suspicious_change"}


def is_muted(data_type: str, now: datetime) -> bool:
    """Nothing is sent for a type that is paused, snoozed or disabled."""
    config = DataTypeConfig.objects.filter(data_type=data_type).first()
    return bool(config and config.activity(now) != "active")


def after_run(result) -> list[Notification]:
    """Called after every sync run (health/receivers.py). Emits an event when the type's health status
    changed since the last alert (one per change, never per failed run), and for each rollback or suspicious
    refusal. The retry queue has handled the run already (receivers run in INSTALLED_APPS order), so an open
    retry's time can be told."""
    now = timezone.now()
    health = ConnectionHealth.objects.filter(pk=result.data_type).first()
    if health is None or result.outcome == SyncRun.Outcome.SKIPPED:
        return []
    events = []
    changed_from = _record_status(result.data_type, health.status, now)
    if changed_from is not None:
        if health.status in STATUS_EVENTS:
            events.append(STATUS_EVENTS[health.status])
        elif health.status == HealthStatus.HEALTHY and changed_from in (
            HealthStatus.DEGRADED,
            HealthStatus.UNHEALTHY,
        ):
            events.append(Event.RECOVERED)
    if result.outcome == SyncRun.Outcome.ROLLED_BACK:
        events.append(Event.SUSPICIOUS if result.error_code in SUSPICIOUS_CODES else Event.ROLLED_BACK)
    retry = (
        RetryItem.objects.filter(
            data_type=result.data_type, operation=RetryItem.Operation.SYNC, status__in=OPEN_STATUSES
        ).first()
        if result.outcome != SyncRun.Outcome.SUCCESS
        else None
    )
    context = {
        "error": result.error,
        "error_code": result.error_code,
        "advice": result.advice,
        "retry_at": retry.next_retry_at.isoformat() if retry else None,
        "item_count": health.item_count,
        "restored_seq": result.restored_seq,
        "consecutive_failures": health.consecutive_failures,
        "recoverable": result.recoverable,
    }
    created = []
    for event in events:
        created += emit(event=event, data_type=result.data_type, context=context, now=now)
    return created


def _record_status(data_type: str, status: str, now: datetime) -> str | None:
    """Remember the status alerts last saw. Returns the previous status when it changed (and this worker
    won the conditional update), else None."""
    state, _ = AlertState.objects.get_or_create(data_type=data_type)
    if state.last_status == status:
        return None
    won = AlertState.objects.filter(pk=data_type, last_status=state.last_status).update(
        last_status=status, status_changed_at=now
    )
    return state.last_status if won else None


def retry_exhausted(item) -> list[Notification]:
    """The retry queue gave up on `item` (a RetryItem)."""
    context = {
        "error": item.last_error_message,
        "error_code": item.error_code,
        "retries": item.retry_count,
        "advice": "Automatic retries are used up; the previous data is kept. Look at the error, then use "
        "Requeue on the dashboard or run a forced sync.",
    }
    return emit(event=Event.RETRY_EXHAUSTED, data_type=item.data_type, context=context)


def send_reminders(*, now: datetime | None = None) -> list[Notification]:
    """While a type stays unhealthy, remind every ALERT_REMINDER_HOURS (from the last alert about it)."""
    now = now or timezone.now()
    every = timedelta(hours=settings.ALERT_REMINDER_HOURS)
    created = []
    for state in AlertState.objects.filter(last_status=HealthStatus.UNHEALTHY):
        last = state.last_alert_at or state.status_changed_at
        if last is None or last > now - every:
            continue
        health = ConnectionHealth.objects.filter(pk=state.data_type).first()
        if health is None or health.status != HealthStatus.UNHEALTHY:
            continue
        since = state.status_changed_at
        context = {
            "error": health.error_message,
            "consecutive_failures": health.consecutive_failures,
            "unhealthy_since": since.isoformat() if since else None,
            "item_count": health.item_count,
        }
        created += emit(event=Event.REMINDER, data_type=state.data_type, context=context, now=now)
    return created


def channels_for(event: str, data_type: str) -> list[AlertChannel]:
    ensure_environment_channel()
    return [c for c in AlertChannel.objects.filter(enabled=True) if c.wants(event, data_type)]


def emit(
    *, event: str, data_type: str, context: dict, now: datetime | None = None, channels=None
) -> list[Notification]:
    """Store one notification per interested channel and queue their delivery. Returns them."""
    now = now or timezone.now()
    if event != Event.TEST and is_muted(data_type, now):
        return []
    targets = channels if channels is not None else channels_for(event, data_type)
    message = render_message(event=event, data_type=data_type, context=context, now=now)
    with transaction.atomic():
        AlertState.objects.filter(pk=data_type).update(last_alert_at=now, last_event=event)
        notes = [
            Notification.objects.create(
                channel=channel,
                event=event,
                data_type=data_type,
                subject=message["subject"],
                body=message["text"],
                html=message["html"],
                payload=message["payload"],
                next_attempt_at=now,
                created_at=now,
            )
            for channel in targets
        ]
    if notes:
        transaction.on_commit(lambda: _queue_delivery([n.pk for n in notes]))
    return notes


def _queue_delivery(ids: list[int]) -> None:
    try:
        from django_q.tasks import async_task

        for pk in ids:
            async_task("health.notify.deliver", pk, task_name=f"notify {pk}", group="alerts")
    except Exception:  # noqa: BLE001 - the sweep in the retry schedule delivers it later
        log.exception("could not queue notification delivery; the next sweep will send it")


def render_message(*, event: str, data_type: str, context: dict, now: datetime) -> dict:
    """Subject, plain text, HTML and a JSON payload for one event. Every text is redacted."""
    label = registry.DATATYPES[data_type].label if data_type in registry.DATATYPES else data_type
    safe = {k: (redact(v) if isinstance(v, str) else v) for k, v in context.items()}
    did = what_we_did(event, data_type, safe)
    ctx = {
        "event": event,
        "title": f"{label} {Event.TITLES[event]}",
        "label": label,
        "data_type": data_type,
        "did": did,
        "when": now,
        "dashboard_url": settings.SITE_URL.rstrip("/") + "/",
        **safe,
    }
    subject = f"[finalesync] {ctx['title']}"
    return {
        "subject": subject[:200],
        "text": render_to_string("alerts/message.txt", ctx),
        "html": render_to_string("alerts/message.html", ctx),
        "payload": {
            "event": event,
            "severity": Event.SEVERITY.get(event, "critical"),
            "data_type": data_type,
            "title": ctx["title"],
            "error": safe.get("error"),
            "did": did,
            "dashboard_url": ctx["dashboard_url"],
            "at": now.isoformat(),
            "details": {k: v for k, v in safe.items() if k not in ("error", "advice")},
        },
    }


def what_we_did(event: str, data_type: str, context: dict) -> str:
    """The sentence an operator needs: what the system did about it and what is left for a person."""
    if event == Event.RECOVERED:
        return f"Synced again: {context.get('item_count', 0):,} rows are current."
    if event == Event.RETRY_EXHAUSTED:
        return f"Gave up after {context.get('retries')} retries; the previous data is kept. {context.get('advice', '')}"
    if event == Event.TEST:
        return "Nothing: this is a test of the channel."
    parts = ["Kept the previous data."]
    if context.get("restored_seq"):
        parts = [
            f"Put back the rows the last good sync left (history #{context['restored_seq']}): someone had changed them."
        ]
    if context.get("retry_at"):
        parts.append(f"Next retry at {local_time(context['retry_at'], '%H:%M %Z')}.")
    elif context.get("recoverable") is False or event in (Event.ROLLED_BACK, Event.SUSPICIOUS):
        parts.append("No automatic retry: this needs a person.")
    if context.get("advice"):
        parts.append(context["advice"])
    if event == Event.REMINDER and context.get("unhealthy_since"):
        parts.append(f"Unhealthy since {local_time(context['unhealthy_since'], '%Y-%m-%d %H:%M %Z')}.")
    return " ".join(parts)


def local_time(value: str | datetime, fmt: str) -> str:
    """A time as people read it where they are: in TIME_ZONE, named (`14:35 CET`), never a bare UTC label."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if timezone.is_naive(at):
        at = at.replace(tzinfo=UTC)  # the engine stores aware UTC times; an older naive one was UTC too
    return timezone.localtime(at).strftime(fmt)


def ensure_environment_channel() -> None:
    """The first channel may come from the environment (ALERT_EMAIL_TO, ALERT_SLACK_WEBHOOK_URL,
    ALERT_WEBHOOK_URL + ALERT_WEBHOOK_SECRET); it is kept in step with it."""
    wanted = {}
    if settings.ALERT_EMAIL_TO:
        wanted["environment: email"] = {"kind": AlertChannel.Kind.EMAIL, "email_to": settings.ALERT_EMAIL_TO}
    if settings.ALERT_SLACK_WEBHOOK_URL:
        wanted["environment: slack"] = {
            "kind": AlertChannel.Kind.SLACK,
            "url": settings.ALERT_SLACK_WEBHOOK_URL,
        }
    if settings.ALERT_WEBHOOK_URL:
        wanted["environment: webhook"] = {
            "kind": AlertChannel.Kind.WEBHOOK,
            "url": settings.ALERT_WEBHOOK_URL,
            "signing_secret": settings.ALERT_WEBHOOK_SECRET,
        }
    existing = {c.name: c for c in AlertChannel.objects.filter(from_environment=True)}
    for name, fields in wanted.items():
        channel = existing.pop(name, None) or AlertChannel(name=name, from_environment=True)
        if any(getattr(channel, k, None) != v for k, v in fields.items()) or channel.pk is None:
            for k, v in fields.items():
                setattr(channel, k, v)
            channel.save()
    for stale in existing.values():
        stale.delete()
