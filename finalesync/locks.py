"""One worker per data type at a time, across processes and hosts.

PostgreSQL: a session-level advisory lock, released by the database itself if the worker dies.
Other databases (SQLite, one host): a lease on the type's configuration row, taken by a conditional UPDATE
whose row count says who won; a dead worker's lease expires after SYNC_LOCK_TTL_SECONDS.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, namespaced so other apps' locks never collide."""
    digest = hashlib.blake2b(f"finalesync:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def holder_is_dead(owner: str) -> bool:
    """True when `owner` (host:pid:nonce) names a process on this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextmanager
def type_lock(data_type: str):
    """Try to take the lock for `data_type` without waiting. Yields True when held (released on exit),
    False when another worker holds it."""
    if connection.vendor == "postgresql":
        key = advisory_key(data_type)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            acquired = cursor.fetchone()[0]
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return

    from .models import DataTypeConfig

    owner = worker_id()
    now = timezone.now()
    expires = now + timedelta(seconds=settings.SYNC_LOCK_TTL_SECONDS)
    rows = DataTypeConfig.objects.filter(data_type=data_type)
    acquired = (
        rows.filter(Q(lock_owner="") | Q(lock_expires_at__lt=now)).update(
            lock_owner=owner, lock_expires_at=expires
        )
        == 1
    )
    if not acquired:
        # A worker on this host that was killed cannot release its lease; don't make the type wait for expiry.
        holder = rows.values_list("lock_owner", flat=True).first() or ""
        if holder_is_dead(holder):
            acquired = rows.filter(lock_owner=holder).update(lock_owner=owner, lock_expires_at=expires) == 1
    try:
        yield acquired
    finally:
        if acquired:
            DataTypeConfig.objects.filter(data_type=data_type, lock_owner=owner).update(
                lock_owner="", lock_expires_at=None
            )
