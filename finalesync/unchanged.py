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
from collections.abc import Iterator
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


# The modules that turn a report line into a row, besides each data type's own.
READING_MODULES = (
    "finalesync.parsing",
    "finalesync.values",
    "finalesync.mirror",
    "finalesync.datatypes.base",
    __name__,
)


def fingerprint_reading_code(datatypes) -> None:
    """Fingerprint the reading code of `datatypes` now (AppConfig.ready(), at start-up): the files are read
    once, as this process loaded them, so that files replaced later by a deploy while it runs never lend
    their fingerprint to the old code still running here."""
    for datatype in datatypes:
        _code_fingerprint(*READING_MODULES, type(datatype).__module__)


def line_salt(datatype, header_cells: list[str]) -> bytes:
    """16 bytes that change whenever a line could read differently: with the code that reads it and with the
    report's header (the columns a cell lands in)."""
    code = _code_fingerprint(*READING_MODULES, type(datatype).__module__)
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
    """The live rows' ids, keys and line digests; collects the report records passed over.

    The reader asks `locate()` which records of a piece are unchanged and, once it has read the others,
    `record()`s them. Staging then settles them (`settle()`): which live rows they keep, which repeat, and
    which live rows no record names (`deletions()`). Per live row only bitmaps are kept (a million rows: a
    few hundred kilobytes), besides the ids, keys and digests themselves.
    """

    def __init__(self, ids: pa.Array, keys: pa.Array, digests: pa.Array):
        self.ids, self.keys, self.digests = ids, keys, digests
        self._positions: list[pa.Array] = []
        self._numbers: list[pa.Array] = []
        self._present: pa.Array | None = None
        # Live rows some record passed over is the line of.
        self._seen: pa.Array | None = None
        self.passed = 0
        # After settle(): live rows kept by records passed over, and live rows whose key was read.
        self._kept: pa.Array | None = None
        self._read: pa.Array | None = None
        self.kept_count = 0

    @classmethod
    def load(cls, table: str) -> UnchangedLines:
        """Read (id, natural_key, line_digest) of every row of the live table `table` (quoted), a part at a
        time so that only the result is held whole."""
        chunks: dict[str, list[pa.Array]] = {name: [] for name in INDEX_TYPES}
        for part in _live_index_parts(table):
            for name in INDEX_TYPES:
                chunks[name].extend(part[name].chunks)
        # One column at a time, so that at most one column is held twice.
        columns = []
        for name, kind in INDEX_TYPES.items():
            columns.append(pa.concat_arrays(chunks.pop(name)) if chunks[name] else pa.array([], kind))
        return cls(*columns)

    def __len__(self) -> int:
        return len(self.ids)

    # --- while reading ----------------------------------------------------------------------------------------
    def locate(self, digests: pa.Array) -> pa.Array:
        """Per record of a piece: the position of the live row whose line it is (null: none).

        The live digests are probed against the piece's (a hash table of one piece, not of every live row
        for every piece), and only those found are looked up."""
        self._present = pc.is_in(self.digests, value_set=digests)
        here = pc.indices_nonzero(self._present)
        found = pc.index_in(digests, value_set=self.digests.take(here))
        return pc.cast(here.take(found), pa.int64())

    def record(self, positions: pa.Array, numbers: pa.Array) -> None:
        """The records of the last `locate()` were passed over: the positions it gave them, and their record
        numbers."""
        present, self._present = self._present, None
        self._seen = present if self._seen is None else pc.or_(self._seen, present)
        self._positions.append(positions)
        self._numbers.append(numbers)
        self.passed += len(positions)

    # --- after reading ----------------------------------------------------------------------------------------
    def settle(self, staged_keys: pa.Array | None) -> tuple[int, list[str], list[tuple[int, int, str]]]:
        """Decide which live rows the records passed over keep.

        A record that appears twice is a repeated key: the first is kept, the rest are counted as duplicates
        (returned with some of their keys). A passed-over record whose key was also read from another record
        (`staged_keys`) is returned as (live row id, record number, key): staging puts that row in with the
        others, so the first of them wins as for any repeated key. The rest are kept."""
        if staged_keys is not None and len(staged_keys):
            self._read = pc.fill_null(pc.is_in(self.keys, value_set=staged_keys), False)
        if self._seen is None:
            self._kept, self.kept_count = None, 0
            return 0, [], []
        seen = pc.fill_null(self._seen, False)
        repeats, examples, clashes = self.passed - pc.sum(seen).as_py(), [], []
        if repeats or self._read is not None:
            positions = pa.concat_arrays(self._positions)
            numbers = pa.concat_arrays(self._numbers)
            self._positions, self._numbers = [positions], [numbers]
            if repeats:
                counts = pc.value_counts(positions)
                repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
                examples = sorted(self.keys.take(repeated).to_pylist())[:5]
            if self._read is not None:
                clash = pc.and_(seen, self._read)
                if pc.any(clash).as_py():
                    wanted = pc.is_in(positions, value_set=pc.indices_nonzero(clash))
                    first: dict[int, int] = {}
                    for position, number in zip(
                        positions.filter(wanted).to_pylist(), numbers.filter(wanted).to_pylist(), strict=True
                    ):
                        first.setdefault(position, number)
                    clashes = [
                        (self.ids[p].as_py(), n, self.keys[p].as_py()) for p, n in sorted(first.items())
                    ]
                    seen = pc.and_(seen, pc.invert(self._read))
        self._kept = seen
        self.kept_count = pc.sum(seen).as_py() or 0
        return repeats, examples, clashes

    def deletions(self) -> pa.Table:
        """The live rows (natural_key, live_id) that no record names: neither kept by a record passed over
        nor read. Call after settle()."""
        gone = None
        for mask in (self._kept, self._read):
            if mask is not None:
                gone = pc.invert(mask) if gone is None else pc.and_(gone, pc.invert(mask))
        table = pa.table({"natural_key": self.keys, "live_id": self.ids})
        return table if gone is None else table.filter(gone)


INDEX_TYPES = {"id": pa.int64(), "key": pa.string(), "digest": pa.int64()}
PART_BYTES = 8 << 20  # PostgreSQL: COPY output read a part of this size at a time
SQLITE_PAGE = 100_000  # SQLite: rows fetched at a time


def _live_index_parts(table: str) -> Iterator[pa.Table]:
    """(id, key, digest) of every row of `table` in tables of a few megabytes."""
    names = list(INDEX_TYPES)
    if connection.vendor == "postgresql":
        sql = f"COPY (SELECT id, natural_key, line_digest FROM {table}) TO STDOUT (FORMAT csv)"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            part, rows = io.BytesIO(), 0
            # PostgreSQL sends each row of a COPY in a message of its own: a part is whole rows.
            for row in copy:
                part.write(row)
                rows += 1
                if part.tell() >= PART_BYTES:
                    yield _read_index_csv(part.getvalue(), names, rows)
                    part, rows = io.BytesIO(), 0
            if part.tell():
                yield _read_index_csv(part.getvalue(), names, rows)
        return
    last, page = 0, SQLITE_PAGE
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, natural_key, line_digest FROM {table} WHERE id > %s ORDER BY id LIMIT {page}",
                [last],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        del rows
        yield pa.table({n: pa.array(c, INDEX_TYPES[n]) for n, c in zip(names, columns, strict=True)})
        last = columns[0][-1]
        if len(columns[0]) < page:
            return


def _read_index_csv(data: bytes, names: list[str], rows: int) -> pa.Table:
    """Parse `rows` rows of COPY's CSV. A key with a line break in it (quoted) needs the slower mode of the
    reader that follows quotes across lines; a carriage return, or more line ends than rows, tell that one is
    there."""
    return pcsv.read_csv(
        pa.BufferReader(data),
        read_options=pcsv.ReadOptions(column_names=names),
        parse_options=pcsv.ParseOptions(newlines_in_values=b"\r" in data or data.count(b"\n") != rows),
        convert_options=pcsv.ConvertOptions(
            column_types=INDEX_TYPES, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
