"""Backups of a data type's live rows, and restoring them.

A backup is a gzip-compressed CSV of the live table (header first, ordered by key) stored in chunks. On
PostgreSQL it is written and read with COPY, so a million rows take seconds, not minutes. Empty cells mean
NULL for nullable columns and the empty string otherwise (mirrored text columns are never nullable).
"""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
import zlib
from collections.abc import Iterator
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from finalesync.datatypes.base import DataType
from finalesync.staging import Staging, qn

from .models import Backup, BackupChunk

CHUNK_BYTES = 1 << 20
# A backup (compressed) bigger than this spools to a temporary file instead of memory.
SPOOL_IN_MEMORY = 32 << 20


def content_checksum(datatype: DataType) -> tuple[int, str]:
    """(row count, checksum over the ordered key/hash pairs) of the live table of `datatype`."""
    table = qn(datatype.model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT count(*), coalesce(md5(string_agg(natural_key || ':' || row_hash, ',' "
                f"ORDER BY natural_key COLLATE \"C\")), '') FROM {table}"
            )
            count, digest = cursor.fetchone()
            return count, digest
        cursor.execute(f"SELECT natural_key, row_hash FROM {table} ORDER BY natural_key")
        h = hashlib.md5(usedforsecurity=False)
        count = 0
        first = True
        while rows := cursor.fetchmany(10000):
            for key, row_hash in rows:
                h.update(f"{'' if first else ','}{key}:{row_hash}".encode())
                first = False
                count += 1
        return count, (h.hexdigest() if count else "")


def latest_backup(data_type: str, *, good_only: bool = False) -> Backup | None:
    qs = Backup.objects.filter(data_type=data_type)
    if good_only:
        qs = qs.filter(is_good=True, row_count__gt=0)
    return qs.order_by("-created_at", "-id").first()


def backup_current(
    *,
    datatype: DataType,
    run=None,
    reason=Backup.Reason.PRE_SYNC,
    is_good: bool = True,
    current: tuple[int, str] | None = None,
) -> tuple[Backup | None, bool]:
    """Back up the live rows of `datatype` unless the latest backup already holds exactly them.

    `current` is the live (row count, checksum) when the caller has just computed it. Returns (backup,
    created); (None, False) when the table is empty (nothing to keep). The backup is committed before
    anything is applied.
    """
    count, checksum = current or content_checksum(datatype)
    if count == 0:
        return None, False
    latest = latest_backup(datatype.name)
    if latest is not None and latest.checksum == checksum and latest.row_count == count:
        if is_good and not latest.is_good:
            Backup.objects.filter(pk=latest.pk).update(is_good=True)
            latest.is_good = True
        return latest, False
    staging = Staging(datatype, with_stamps=True)
    # The dump goes to a spool file first: on PostgreSQL the connection is busy with COPY until the dump
    # ends, and a chunk INSERT on it before then would wait forever on the connection's own lock.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        compressor = zlib.compressobj(
            level=1, wbits=31
        )  # gzip framing, fast level: backups are on the hot path
        for block in _dump_csv(datatype, staging.columns):
            spool.write(compressor.compress(block))
        spool.write(compressor.flush())
        size = spool.tell()
        spool.seek(0)
        with transaction.atomic():
            backup = Backup.objects.create(
                data_type=datatype.name,
                reason=reason,
                row_count=count,
                checksum=checksum,
                columns=staging.columns,
                sync_run=run,
                is_good=is_good,
                size_bytes=size,
            )
            seq = 0
            while blob := spool.read(CHUNK_BYTES):
                BackupChunk.objects.create(backup=backup, seq=seq, data=blob)
                seq += 1
    return backup, True


def _dump_csv(datatype: DataType, columns: list[str]) -> Iterator[bytes]:
    table = qn(datatype.model._meta.db_table)
    cols = ", ".join(qn(c) for c in columns)
    header = (",".join(columns) + "\n").encode()
    if connection.vendor == "postgresql":
        yield header
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                f'COPY (SELECT {cols} FROM {table} ORDER BY natural_key COLLATE "C") TO STDOUT WITH (FORMAT csv)'
            ) as copy,
        ):
            # COPY hands back one row per block: batch them so compression runs on megabytes, not rows.
            batch, size = [], 0
            for block in copy:
                batch.append(block)
                size += len(block)
                if size >= CHUNK_BYTES:
                    yield b"".join(batch)
                    batch, size = [], 0
            if batch:
                yield b"".join(batch)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    buffer.write(header.decode())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {cols} FROM {table} ORDER BY natural_key")
        while rows := cursor.fetchmany(5000):
            writer.writerows(("" if v is None else v for v in row) for row in rows)
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def iter_backup_bytes(backup: Backup) -> Iterator[bytes]:
    """The backup's CSV, decompressed, as a stream of blocks. The chunks are read into a spool file first,
    so the caller may COPY the stream into PostgreSQL without another query on the busy connection."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    for chunk_id in backup.chunks.order_by("seq").values_list("id", flat=True):
        spool.write(bytes(BackupChunk.objects.filter(pk=chunk_id).values_list("data", flat=True).get()))
    spool.seek(0)

    def blocks():
        decompressor = zlib.decompressobj(wbits=31)
        with spool:
            while data := spool.read(CHUNK_BYTES):
                yield decompressor.decompress(data)
            yield decompressor.flush()

    return blocks()


def stage_backup(backup: Backup, staging: Staging) -> int:
    """Load a backup's rows into `staging` (all as good rows). Returns the number of rows staged."""
    reader = backup_rows(backup)
    header = next(reader, None)
    if header is None:
        return 0
    position = {name: i for i, name in enumerate(header)}
    missing = {"natural_key", "row_hash"} - set(position)
    if missing:
        raise ValueError(f"backup #{backup.pk} lacks columns {sorted(missing)}")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    # A column the backup lacks (added by a later migration) gets its empty value; stamps get "now".
    defaults = {"created_at": now, "updated_at": now}
    picks = [
        (position.get(col), col in staging.nullable or col == "extra", defaults.get(col, ""))
        for col in staging.columns
    ]

    def rows():
        for line, row in enumerate(reader, start=1):
            values = []
            for index, nullable, default in picks:
                value = row[index] if index is not None else default
                values.append(None if (nullable and value == "") else value)
            yield (*values, line, 0)

    before = staging.staged
    staging.write_raw(rows())
    staging.index()
    return staging.staged - before


def backup_rows(backup: Backup) -> Iterator[list[str]]:
    """A backup's CSV rows (lists of cells), header first, streamed."""
    return csv.reader(_lines(iter_backup_bytes(backup)))


def _lines(blocks: Iterator[bytes]) -> Iterator[str]:
    text = io.TextIOWrapper(_BytesIterIO(blocks), encoding="utf-8", newline="")
    yield from text


class _BytesIterIO(io.RawIOBase):
    def __init__(self, blocks: Iterator[bytes]):
        self._blocks = blocks
        self._pending = b""

    def readable(self):
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            try:
                self._pending = next(self._blocks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def prune_backups(*, data_type: str, keep_count: int, keep_days: int, now=None) -> int:
    """Delete backups of `data_type` beyond the newest `keep_count` good ones that are also older than
    `keep_days`. A backup a sync run or failure log points at is kept while it is among those."""
    now = now or timezone.now()
    keep_ids = set(
        Backup.objects.filter(data_type=data_type, is_good=True)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)[:keep_count]
    )
    old = Backup.objects.filter(data_type=data_type, created_at__lt=now - timedelta(days=keep_days)).exclude(
        id__in=keep_ids
    )
    count = old.count()
    old.delete()
    return count
