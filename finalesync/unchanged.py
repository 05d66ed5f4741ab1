"""Passing over the report lines that have not changed since the last sync.

Every live row keeps the digest of the report line it was last read from (`line_digest`: blake2b, 8 bytes,
salted with `line_salt()`). A sync digests every line of the report and reads only the lines whose digest is
no live row's: a line that has not changed gives the row it gave last time, so reading, checking, staging and
comparing it again could only find the row equal. Its row counts as unchanged, exactly as if it had been
compared. Live rows that no line names, read or passed over, are deleted as before, after the same checks.

It rests on one promise: **a live row with a digest holds what its line reads as.** The engine keeps it:
- a sync gives every row it writes its line's digest, and a row whose line changed but whose values did not
  gets the new digest (finalesync/staging.py, `apply`);
- a restore clears the digest of every row it puts back, so their lines are read again next time;
- the salt covers the code that turns a line into a row (the reader, the value rules, the data type's
  module, pyarrow's version) and the report's header, so new code or a new column layout reads every line.
A change to the live table by hand breaks the promise, so a sync compares every row instead:
- when the type has no history yet, or the live table's row count is not what the last sync left;
- when the last full comparison is older than SYNC_FULL_COMPARE_HOURS (24 by default; 0: always), which
  repairs a value edited by hand within a day;
- for data types whose lines do not stand alone (a BOM component line belongs to the parent line above it)
  and for sources that are not report lines (the purchase-order collection).

Digests are of records, not lines: a record whose quotes do not pair up on its first line continues on the
next (a quoted field with a line break). Should the parser find other records than the quotes suggest (stray
quotes in unquoted fields), that piece of the report is read in full and its rows get no digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from datetime import timedelta
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from django.conf import settings
from django.db import connection
from django.utils import timezone

DIGEST_BYTES = 8


def line_digests(salt: bytes, lines: list[bytes]) -> pa.Array:
    """The digest of every line (its bytes as sent, line end excluded), as int64."""
    joined = b"".join([hashlib.blake2b(line, digest_size=DIGEST_BYTES, salt=salt).digest() for line in lines])
    return pa.Array.from_buffers(pa.int64(), len(lines), [None, pa.py_buffer(joined)])


@cache
def _code_fingerprint(*module_names: str) -> bytes:
    digest = hashlib.blake2b(pa.__version__.encode(), digest_size=16)
    for name in module_names:
        digest.update(Path(sys.modules[name].__file__).read_bytes())
    return digest.digest()


def line_salt(datatype, header_cells: list[str]) -> bytes:
    """16 bytes that change whenever a line could read differently: with the code that reads it and with the
    report's header (the columns a cell lands in)."""
    code = _code_fingerprint(
        "finalesync.parsing",
        "finalesync.values",
        "finalesync.mirror",
        "finalesync.datatypes.base",
        __name__,
        type(datatype).__module__,
    )
    text = json.dumps([datatype.name, header_cells], ensure_ascii=False).encode()
    return hashlib.blake2b(code + text, digest_size=16).digest()


def full_compare_reason(config, live_rows: int | None = None) -> str | None:
    """Why the next sync of `config`'s type must read every line and compare every row (None: it may pass
    over unchanged lines)."""
    hours = settings.SYNC_FULL_COMPARE_HOURS
    if hours <= 0:
        return "SYNC_FULL_COMPARE_HOURS is 0"
    if not config.history_seq:
        return "first sync"
    if config.full_compare_at is None or timezone.now() - config.full_compare_at >= timedelta(hours=hours):
        return f"last full comparison more than {hours:g} hours ago"
    if live_rows is not None and live_rows != config.live_rows:
        return f"the table has {live_rows:,} rows where the last sync left {config.live_rows:,}"
    return None


class UnchangedLines:
    """The live rows' ids, keys and line digests; collects the report lines passed over.

    The reader asks `match()` which lines of a piece are unchanged and, once it has read the others,
    `record()`s them. Staging then settles them (`settle()`): which live rows they keep, and which repeat.
    """

    def __init__(self, ids: pa.Array, keys: pa.Array, digests: pa.Array):
        self.ids, self.keys, self.digests = ids, keys, digests
        self._positions: list[pa.Array] = []
        self._numbers: list[pa.Array] = []
        self.passed = 0
        # After settle(): positions (into ids/keys) of the live rows that unchanged lines keep.
        self.kept = pa.array([], pa.int64())

    @classmethod
    def load(cls, table: str) -> UnchangedLines:
        """Read (id, natural_key, line_digest) of every row of the live table `table` (quoted)."""
        sql = f"SELECT id, natural_key, line_digest FROM {table}"
        if connection.vendor == "postgresql":
            buffer = io.BytesIO()
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy,
            ):
                for block in copy:
                    buffer.write(block)
            names = ["id", "key", "digest"]
            if not buffer.getbuffer().nbytes:
                return cls(pa.array([], pa.int64()), pa.array([], pa.string()), pa.array([], pa.int64()))
            data = pcsv.read_csv(
                io.BytesIO(buffer.getbuffer()),
                read_options=pcsv.ReadOptions(column_names=names),
                convert_options=pcsv.ConvertOptions(
                    column_types={"id": pa.int64(), "key": pa.string(), "digest": pa.int64()},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            ).combine_chunks()
            del buffer
            return cls(*(data[n].combine_chunks() for n in names))
        ids, keys, digests = [], [], []
        with connection.cursor() as cursor:
            cursor.execute(sql)
            while rows := cursor.fetchmany(10_000):
                for row_id, key, digest in rows:
                    ids.append(row_id)
                    keys.append(key)
                    digests.append(digest)
        return cls(pa.array(ids, pa.int64()), pa.array(keys, pa.string()), pa.array(digests, pa.int64()))

    def __len__(self) -> int:
        return len(self.ids)

    # --- while reading ----------------------------------------------------------------------------------------
    def match(self, digests: pa.Array) -> pa.Array:
        """Per line: is it a live row's line?"""
        return pc.is_in(digests, value_set=self.digests, skip_nulls=True)

    def record(self, digests: pa.Array, numbers: pa.Array) -> None:
        """Lines passed over: their digests (all matched) and record numbers."""
        self._positions.append(
            pc.cast(pc.index_in(digests, value_set=self.digests, skip_nulls=True), pa.int64())
        )
        self._numbers.append(numbers)
        self.passed += len(digests)

    # --- after reading ----------------------------------------------------------------------------------------
    def settle(self, staged_keys: pa.Array | None) -> tuple[int, list[str], list[tuple[int, int]]]:
        """Decide which live rows the lines passed over keep.

        A line that appears twice is a repeated key: the first is kept, the rest are counted as duplicates
        (returned with some of their keys). A passed-over line whose key was also read from another line
        (`staged_keys`) is returned as (live row id, record number): staging puts that row in with the
        others, so the first of them wins as for any repeated key. The rest are `kept`."""
        if not self._positions:
            return 0, [], []
        positions = pa.concat_arrays(self._positions)
        numbers = pa.concat_arrays(self._numbers)
        self._positions, self._numbers = [positions], [numbers]
        distinct = pc.unique(positions)
        repeats, examples = len(positions) - len(distinct), []
        if repeats:
            counts = pc.value_counts(positions)
            repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
            examples = sorted(self.keys.take(repeated).to_pylist())[:5]
        clashes: list[tuple[int, int]] = []
        if staged_keys is not None and len(staged_keys):
            clash = pc.is_in(self.keys.take(distinct), value_set=staged_keys)
            if pc.any(clash).as_py():
                first: dict[int, int] = {}
                wanted = set(distinct.filter(clash).to_pylist())
                for position, number in zip(positions.to_pylist(), numbers.to_pylist(), strict=True):
                    if position in wanted and position not in first:
                        first[position] = number
                clashes = [(self.ids[p].as_py(), n) for p, n in sorted(first.items())]
                distinct = distinct.filter(pc.invert(clash))
        self.kept = distinct
        return repeats, examples, clashes

    def deletions(self, staged_keys: pa.Array | None) -> pa.Table:
        """The live rows (natural_key, id) that no line names: neither kept by a line passed over nor read."""
        gone = pc.invert(pc.is_in(self.ids, value_set=self.ids.take(self.kept)))
        if staged_keys is not None and len(staged_keys):
            gone = pc.and_(gone, pc.invert(pc.is_in(self.keys, value_set=staged_keys)))
        return pa.table({"natural_key": self.keys, "live_id": self.ids}).filter(gone)
