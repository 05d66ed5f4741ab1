"""Staging and applying one data type's rows: the set-based core of a sync and of a restore.

Parsed rows are written to a temporary table (PostgreSQL: COPY; others: batched INSERT), then applied to the
live table with three statements inside the caller's transaction: delete the keys Finale no longer has,
update rows whose hash changed, insert new keys. Unchanged rows are never written.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import CharField, DateTimeField, JSONField, TextField

from .datatypes.base import BadRow, DataType, Record, Unchanged

COPY_FLUSH = 1 << 20
# The `bad` flag of a staged row: parsed, unreadable (its live row is kept), or unchanged since last time.
GOOD, BAD, UNCHANGED = 0, 1, 2
INSERT_BATCH = 2000


@dataclass
class ApplyCounts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0


def qn(name: str) -> str:
    return connection.ops.quote_name(name)


class Staging:
    """A temporary table shaped like the live table of `datatype` (plus line number and a bad-row flag).

    Use as a context manager: the table is dropped on exit whatever happened.
    """

    def __init__(self, datatype: DataType, *, with_stamps: bool = False):
        self.datatype = datatype
        self.model = datatype.model
        self.live = qn(self.model._meta.db_table)
        fields = [self.model._meta.get_field(name) for name in datatype.fields]
        self.data_columns = [f.column for f in fields]
        self.columns = ["natural_key", *self.data_columns, "extra", "row_hash", "source_hash"]
        # A restore brings rows back with their own created/updated times; a sync stamps them itself.
        self.with_stamps = with_stamps
        if with_stamps:
            self.columns += ["created_at", "updated_at"]
        self.nullable = {f.column for f in fields if f.null}
        self._text_columns = ["natural_key", "row_hash", "source_hash"] + [
            f.column for f in fields if isinstance(f, (CharField, TextField)) and not f.null
        ]
        self._adapters = [self._adapter(f) for f in fields]
        self.name = f"finalesync_stage_{datatype.name}_{uuid.uuid4().hex[:8]}"
        self.table = qn(self.name)
        self.staged = 0

    def _adapter(self, field):
        if isinstance(field, JSONField):
            return lambda v: None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True)
        if isinstance(field, DateTimeField):
            return lambda v: connection.ops.adapt_datetimefield_value(v)
        return None

    # --- lifecycle ------------------------------------------------------------------------------------------
    def __enter__(self):
        cols = ", ".join(qn(c) for c in self.columns)
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {self.table} AS SELECT {cols} FROM {self.live} WHERE 1 = 0"
            )
            cursor.execute(f"ALTER TABLE {self.table} ADD COLUMN line_no bigint")
            cursor.execute(f"ALTER TABLE {self.table} ADD COLUMN bad smallint")
        return self

    def __exit__(self, *exc):
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
        except Exception:  # noqa: BLE001,S110 - a broken connection drops temporary tables by itself
            pass

    # --- loading ----------------------------------------------------------------------------------------------
    def load(self, items: Iterable[Record | BadRow | Unchanged], *, on_bad=None, on_progress=None) -> None:
        """Stage parsed records. Bad and unchanged rows are staged with their key only (flag 1 and 2), so
        their live row is kept; an unchanged row counts as good."""
        adapters = self._adapters
        plain = not any(adapters)
        width = len(self.columns)

        def rows():
            for line, item in enumerate(items, start=1):
                if isinstance(item, Record):
                    values = (
                        item.values
                        if plain
                        else [a(v) if a else v for a, v in zip(adapters, item.values, strict=True)]
                    )
                    extra = item.extra_json()
                    yield (item.key, *values, extra, item.row_hash(extra), item.source, line, GOOD)
                elif isinstance(item, Unchanged):
                    yield (item.key, *([None] * (width - 1)), line, UNCHANGED)
                else:
                    if on_bad:
                        on_bad(item)
                    if item.key:
                        yield (item.key, *([None] * (width - 1)), line, BAD)
                if on_progress and line % 5000 == 0:
                    on_progress(line)

        self.write_raw(rows())
        self.index()

    def index(self) -> None:
        """Prepare the staged rows for the checks and the apply; call once after loading."""
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Temporary tables are never auto-analysed; without statistics the joins go nested-loop.
                # With them PostgreSQL hash-joins, which an index on the staged keys would not speed up.
                cursor.execute(f"ANALYZE {self.table}")
            else:
                cursor.execute(f"CREATE INDEX {qn(self.name + '_key')} ON {self.table} (natural_key)")

    def write_raw(self, rows: Iterable[tuple]) -> None:
        """Write tuples in `columns + [line_no, bad]` order, values already in database form."""
        names = [*self.columns, "line_no", "bad"]
        # Its own transaction (a savepoint when nested): a stream that breaks mid-COPY must not leave the
        # caller's transaction aborted.
        with transaction.atomic():
            if connection.vendor == "postgresql":
                self._copy(rows, names)
            else:
                self._insert(rows, names)

    def _copy(self, rows, names):
        force = ", ".join(qn(c) for c in self._text_columns)
        sql = (
            f"COPY {self.table} ({', '.join(qn(n) for n in names)}) FROM STDIN "
            f"WITH (FORMAT csv, FORCE_NOT_NULL ({force}))"
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        count = 0
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                writer.writerow(row)
                count += 1
                if buffer.tell() > COPY_FLUSH:
                    copy.write(buffer.getvalue())
                    buffer.seek(0)
                    buffer.truncate()
            if buffer.tell():
                copy.write(buffer.getvalue())
        self.staged += count

    def _insert(self, rows, names):
        sql = f"INSERT INTO {self.table} ({', '.join(qn(n) for n in names)}) VALUES ({', '.join(['%s'] * len(names))})"
        batch = []
        with connection.cursor() as cursor:
            for row in rows:
                batch.append(row)
                if len(batch) >= INSERT_BATCH:
                    cursor.executemany(sql, batch)
                    self.staged += len(batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)
                self.staged += len(batch)

    # --- checks before applying ---------------------------------------------------------------------------------
    def scalar(self, sql: str, params=()) -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0] or 0

    def good_count(self) -> int:
        return self.scalar(f"SELECT count(*) FROM {self.table} WHERE bad <> {BAD}")

    def live_source_hashes(self) -> set[int]:
        """The source digests of the live rows, as integers (about 70 bytes each in memory)."""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT source_hash FROM {self.live} WHERE source_hash <> ''")
            known = set()
            while rows := cursor.fetchmany(20000):
                known.update(int(h, 16) for (h,) in rows)
        return known

    def live_count(self) -> int:
        return self.scalar(f"SELECT count(*) FROM {self.live}")

    def drop_duplicates(self, limit_examples: int = 5) -> tuple[int, list[str]]:
        """Keep the first row of each key; return how many later rows were dropped and some of their keys."""
        t = self.table
        duplicates = self.scalar(f"SELECT count(*) - count(DISTINCT natural_key) FROM {t} WHERE bad <> {BAD}")
        if not duplicates:
            return 0, []
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT natural_key FROM {t} WHERE bad <> {BAD} GROUP BY natural_key HAVING count(*) > 1 "
                f"ORDER BY natural_key LIMIT {int(limit_examples)}"
            )
            examples = [r[0] for r in cursor.fetchall()]
            cursor.execute(
                f"DELETE FROM {t} WHERE bad <> {BAD} AND line_no > "
                f"(SELECT min(d.line_no) FROM {t} d WHERE d.bad <> {BAD} AND d.natural_key = {t}.natural_key)"
            )
        return duplicates, examples

    def kept_bad_count(self) -> int:
        """Live rows that stay only because their new row was unreadable (so they are not deleted)."""
        t, live = self.table, self.live
        return self.scalar(
            f"SELECT count(DISTINCT s.natural_key) FROM {t} s WHERE s.bad = {BAD} "
            f"AND EXISTS (SELECT 1 FROM {live} l WHERE l.natural_key = s.natural_key) "
            f"AND NOT EXISTS (SELECT 1 FROM {t} g WHERE g.bad <> {BAD} AND g.natural_key = s.natural_key)"
        )

    # --- applying (call inside transaction.atomic) -------------------------------------------------------------
    def apply(self, *, now, good: int) -> ApplyCounts:
        """Make the live table equal to the staged rows. Returns what changed."""
        t, live = self.table, self.live
        stamp = connection.ops.adapt_datetimefield_value(now)
        counts = ApplyCounts()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Enough memory for the hash joins of a million-row type; only for this transaction.
                cursor.execute("SET LOCAL work_mem = '64MB'")
            if self.live_count():
                cursor.execute(
                    f"DELETE FROM {live} WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {t} s WHERE s.natural_key = {live}.natural_key)"
                )
                counts.deleted = cursor.rowcount
                assigned = [*self.data_columns, "extra", "row_hash"]
                if self.with_stamps:
                    assigned += ["created_at", "updated_at"]
                assignments = ", ".join(f"{qn(c)} = s.{qn(c)}" for c in assigned)
                stamping = "" if self.with_stamps else ", updated_at = %s"
                cursor.execute(
                    f"UPDATE {live} SET {assignments}{stamping} FROM {t} s "
                    f"WHERE s.natural_key = {live}.natural_key AND s.bad = 0 AND {live}.row_hash <> s.row_hash",
                    [] if self.with_stamps else [stamp],
                )
                counts.updated = cursor.rowcount
                # Same values, other raw text (say, a number now formatted "1,234"): remember the new text so
                # the next sync can skip the row, without touching its values or updated_at.
                cursor.execute(
                    f"UPDATE {live} SET source_hash = s.source_hash FROM {t} s "
                    f"WHERE s.natural_key = {live}.natural_key AND s.bad = 0 "
                    f"AND {live}.row_hash = s.row_hash AND {live}.source_hash <> s.source_hash"
                )
                not_live = f"AND NOT EXISTS (SELECT 1 FROM {live} l WHERE l.natural_key = s.natural_key)"
            else:
                not_live = ""
            cols = ", ".join(qn(c) for c in self.columns)
            select = ", ".join(f"s.{qn(c)}" for c in self.columns)
            if self.with_stamps:
                insert, params = f"INSERT INTO {live} ({cols}) SELECT {select} FROM {t} s", []
            else:
                insert = (
                    f"INSERT INTO {live} ({cols}, created_at, updated_at) SELECT {select}, %s, %s FROM {t} s"
                )
                params = [stamp, stamp]
            cursor.execute(f"{insert} WHERE s.bad = 0 {not_live}", params)
            counts.created = cursor.rowcount
        counts.unchanged = good - counts.created - counts.updated
        return counts
