"""Manual actions on the retry queue (dashboard, admin): Retry now, Cancel, Requeue. Each writes an audit
row whatever the outcome (finalesync/audit.py); a refused action raises ActionRefused with a message."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import transaction

from finalesync.audit import Action, ActionRefused, Actor, audited

from . import queue
from .models import RetryItem, RetryStatus


def _retry_target(item_id: int) -> tuple[str, str]:
    item = RetryItem.objects.filter(pk=item_id).values("data_type", "operation").first()
    if item is None:
        return f"retry #{item_id}", ""
    return f"retry #{item_id} ({item['operation']} {item['data_type']})", item["data_type"]


@contextmanager
def _retry_refusals(item_id: int):
    """The queue's own refusals (unknown item, wrong state) become ActionRefused with a person's wording."""
    try:
        yield
    except RetryItem.DoesNotExist:
        raise ActionRefused(f"there is no retry #{item_id}") from None
    except ValueError as exc:
        raise ActionRefused(str(exc)) from None


def _kick_processor() -> None:
    """Run the retry processor as soon as the transaction commits, instead of at its next 2-minute tick."""
    from django_q.tasks import async_task

    transaction.on_commit(
        lambda: async_task("retries.tasks.process_retries", task_name="retry now", group="retries")
    )


def retry_now(*, item_id: int, actor: Actor, reason: str = "") -> str:
    """Run retry `item_id` now: a pending item is made due, a failed or cancelled one is requeued with a
    fresh budget; then the processor is started. Raises ActionRefused for a processing or unknown item."""
    target, data_type = _retry_target(item_id)

    def work():
        with _retry_refusals(item_id):
            item = RetryItem.objects.get(pk=item_id)
            if item.status == RetryStatus.PENDING:
                queue.retry_now(item_id=item_id, user=actor.name)
            elif item.status == RetryStatus.PROCESSING:
                raise ActionRefused(f"retry #{item_id} is being processed right now")
            else:
                queue.requeue(item_id=item_id, user=actor.name)
        _kick_processor()
        return f"Retry #{item_id} of {item.operation} {item.data_type} is due now; the retry processor was started."

    return audited(
        actor=actor, action=Action.RETRY_NOW, target=target, data_type=data_type, reason=reason, work=work
    )


def cancel_retry(*, item_id: int, actor: Actor, reason: str = "") -> str:
    """Cancel pending retry `item_id`. Raises ActionRefused when it is not pending."""
    target, data_type = _retry_target(item_id)

    def work():
        with _retry_refusals(item_id):
            item = queue.cancel(item_id=item_id, user=actor.name)
        return f"Retry #{item_id} of {item.operation} {item.data_type} cancelled."

    return audited(
        actor=actor, action=Action.CANCEL_RETRY, target=target, data_type=data_type, reason=reason, work=work
    )


def requeue_retry(*, item_id: int, actor: Actor, reason: str = "") -> str:
    """Give failed or cancelled retry `item_id` a fresh budget; the processor takes it at its next run."""
    target, data_type = _retry_target(item_id)

    def work():
        with _retry_refusals(item_id):
            item = queue.requeue(item_id=item_id, user=actor.name)
        return (
            f"Retry #{item_id} of {item.operation} {item.data_type} requeued with {item.max_retries} "
            "attempts; the processor takes it at its next run."
        )

    return audited(
        actor=actor, action=Action.REQUEUE_RETRY, target=target, data_type=data_type, reason=reason, work=work
    )
