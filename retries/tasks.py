"""django-q2 task entry points of the retry queue. Thin: each calls the same function as its command."""

from __future__ import annotations


def process_retries() -> dict:
    """The 'process-sync-retries' schedule: one run of the retry processor."""
    from .queue import process_retries as run

    return run().as_json()


def cleanup() -> dict:
    """The daily 'cleanup' schedule."""
    from .cleanup import run_cleanup

    return run_cleanup()
