"""Manual actions of the health app: "Send test notification" for an alert channel."""

from __future__ import annotations

from finalesync.audit import Action, ActionRefused, Actor, Outcome, record

from .alerts import Event, emit
from .models import AlertChannel, Notification
from .notify import deliver

# It sends real requests with the channel's stored credentials: only who may change channels may test them.
TEST_ALERT_PERMISSION = "health.change_alertchannel"


def send_test_alert(*, channel_id: int, actor: Actor) -> str:
    """Send a test notification through one alert channel now (not via the queue, so the person sees the
    result). Needs the permission to change alert channels. Returns a message; raises ActionRefused when the
    channel is unknown, the actor may not, or delivery failed."""
    channel = AlertChannel.objects.filter(pk=channel_id).first()
    if channel is None:
        raise ActionRefused(f"no alert channel #{channel_id}")
    if actor.user is None or not actor.user.has_perm(TEST_ALERT_PERMISSION):
        message = f"{actor.name} may not send test notifications (needs {TEST_ALERT_PERMISSION})"
        record(
            actor=actor,
            action=Action.SEND_TEST_ALERT,
            target=f"alert channel {channel.name}",
            outcome=Outcome.REFUSED,
            message=message,
        )
        raise ActionRefused(message)
    [note] = emit(event=Event.TEST, data_type="all types", context={}, channels=[channel])
    status = deliver(note.pk)
    note.refresh_from_db()
    ok = status == Notification.Status.SENT
    message = f"Test notification to {channel.name}: " + ("sent" if ok else f"not sent ({note.last_error})")
    record(
        actor=actor,
        action=Action.SEND_TEST_ALERT,
        target=f"alert channel {channel.name}",
        outcome=Outcome.SUCCESS if ok else Outcome.FAILED,
        message=message,
    )
    if not ok:
        raise ActionRefused(message)
    return message
