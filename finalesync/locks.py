"""One worker per data type at a time, across processes and hosts.

PostgreSQL: a session-level advisory lock, released by the database itself if the worker dies.
Other databases (SQLite, one host): a lease on the type's configuration row, taken by a conditional UPDATE
whose row count says who won; a dead worker's lease expires after SYNC_LOCK_TTL_SECONDS. A live worker renews
its lease while it works, and a sync checks that it still holds the lock inside the transaction that applies
its rows: a worker whose lease expired (and was taken over) never applies.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from .errors import LostLock


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


class Lease:
    """A held type lock. `renew()` keeps it alive during long work; `check()` raises LostLock when it is
    no longer ours. Truthy when held."""

    def __init__(self, data_type: str, *, held: bool, owner: str = "", key: int | None = None):
        self.data_type = data_type
        self.held = held
        self.owner = owner
        self.key = key
        self._renewed = time.monotonic()

    def __bool__(self) -> bool:
        return self.held

    def renew(self, *, force: bool = False) -> None:
        """Extend a SQLite lease (at most every few seconds unless `force`); raise LostLock if it was lost."""
        if self.key is not None:
            return
        every = max(1.0, settings.SYNC_LOCK_TTL_SECONDS / 6)
        if not force and time.monotonic() - self._renewed < every:
            return
        self._renewed = time.monotonic()
        from .models import DataTypeConfig

        expires = timezone.now() + timedelta(seconds=settings.SYNC_LOCK_TTL_SECONDS)
        kept = DataTypeConfig.objects.filter(data_type=self.data_type, lock_owner=self.owner).update(
            lock_expires_at=expires
        )
        if not kept:
            self.held = False
            raise LostLock(
                f"The lock on {self.data_type} expired and another worker took it over; this run applies nothing"
            )

    def check(self) -> None:
        """Raise LostLock unless this worker still holds the lock (call inside the apply transaction)."""
        if self.key is None:
            self.renew(force=True)
            return
        hi, lo = (self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = %s::bigint::oid AND objid = %s::bigint::oid "
                "AND objsubid = 1",
                [hi, lo],
            )
            if not cursor.fetchone()[0]:
                self.held = False
                raise LostLock(f"The advisory lock on {self.data_type} is no longer held by this worker")


@contextmanager
def type_lock(data_type: str):
    """Try to take the lock for `data_type` without waiting. Yields a Lease (falsy when another worker
    holds the lock); releases it on exit."""
    if connection.vendor == "postgresql":
        key = advisory_key(data_type)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            acquired = cursor.fetchone()[0]
        try:
            yield Lease(data_type, held=acquired, key=key)
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
        yield Lease(data_type, held=acquired, owner=owner)
    finally:
        if acquired:
            DataTypeConfig.objects.filter(data_type=data_type, lock_owner=owner).update(
                lock_owner="", lock_expires_at=None
            )
