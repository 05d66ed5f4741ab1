"""The audit log: who did what, from where, to which target, and how it ended. Every manual action of every
app writes through here (finalesync/actions.py, retries/actions.py, health/actions.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import AuditLog
from .redact import redact

Action = AuditLog.Action
Outcome = AuditLog.Outcome


class ActionRefused(Exception):
    """The action was not carried out (bad state, unknown target, a lock held...). The message says why."""


@dataclass(frozen=True)
class Actor:
    """Who acts and from where. `user` is None for a command's --user name that is not an account."""

    name: str
    source: str
    user: object | None = None

    @classmethod
    def for_user(cls, user, source: str) -> Actor:
        return cls(name=user.get_username(), source=source, user=user)

    @classmethod
    def named(cls, name: str, source: str = AuditLog.Source.CLI) -> Actor:
        """An actor from a command's --user: linked to the account of that name when there is one."""
        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: name}).first()
        return cls(name=name, source=source, user=user)


def record(
    *,
    actor: Actor,
    action: str,
    target: str,
    outcome: str,
    message: str = "",
    reason: str = "",
    data_type: str = "",
) -> AuditLog:
    """Write one audit entry (messages are redacted: an entry never holds a secret)."""
    return AuditLog.objects.create(
        user=actor.user if getattr(actor.user, "pk", None) else None,
        username=actor.name[:150],
        source=actor.source,
        action=action,
        target=target[:200],
        data_type=data_type,
        outcome=outcome,
        message=redact(message)[:2000],
        reason=redact(reason)[:2000],
    )


def audited(
    *,
    actor: Actor,
    action: str,
    target: str,
    data_type: str = "",
    reason: str = "",
    work: Callable[[], str],
    outcome: str = Outcome.SUCCESS,
) -> str:
    """Run `work` and its audit row in one transaction; on refusal, record the refusal and re-raise."""
    try:
        with transaction.atomic():
            message = work()
            record(
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                message=message,
                reason=reason,
                data_type=data_type,
            )
        return message
    except ActionRefused as exc:
        record(
            actor=actor,
            action=action,
            target=target,
            outcome=Outcome.REFUSED,
            message=str(exc),
            reason=reason,
            data_type=data_type,
        )
        raise
