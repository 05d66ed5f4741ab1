"""The retry queue. (Filled in by the retry-queue issue; the sync engine already calls `after_sync`.)"""

from __future__ import annotations


def after_sync(result) -> None:
    """Called after every sync run with its SyncResult. Enqueues or completes retries."""
    result.retry_enqueued = False
