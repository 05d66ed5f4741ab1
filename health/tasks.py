"""django-q2 task entry points of the health app."""

from __future__ import annotations


def deliver_alerts() -> dict:
    """The 'deliver-alerts' schedule: reminders while a type stays unhealthy, then the sweep that delivers
    pending notifications (with their own retries)."""
    from .alerts import send_reminders
    from .notify import deliver_due

    return {"reminders": len(send_reminders()), "notifications": deliver_due()}
