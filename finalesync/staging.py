"""Staging, comparing and applying one data type's rows: the set-based core of a sync and of a restore.

Rows are written to a temporary table (PostgreSQL: COPY of pyarrow-written CSV; SQLite: batched INSERT).
`diff()` compares them with the live table in one pass, value by value, into a small temporary table of the
keys to create, update and delete, with the evidence the data checks need. `apply()` then writes, inside the
caller's transaction, each changed row's new version into the type's row history and makes the live table
match it: unchanged rows are never written.

With `UnchangedLines` (finalesync/unchanged.py) only the lines that changed were read and staged: the lines
passed over keep their live rows, and the live rows that no line names are deleted.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from django.db import connection, models, transaction

from .datatypes.base import BadRow, DataType, Parsed
from .mirror import STAMPS, data_fields
from .unchanged import UnchangedLines

INSERT_BATCH = 2000
# Up to this many staged keys are checked for repeats in memory when they are not in order.
DISTINCT_IN_MEMORY = 200_000
SAMPLE = 5


def qn(name: str) -> str:
    return connection.ops.quote_name(name)


@dataclass
class Diff:
    """What applying the staged rows would do to the live table."""

    live_rows: int = 0
    incoming: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    # Live rows kept only because their new row could not be read.
    kept_bad: int = 0
    # column → rows whose value the update would empty (only columns where that happens).
    emptied: dict[str, int] = field(default_factory=dict)
    # column → live rows that have a value in it (computed only when a column would be emptied).
    filled: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def unchanged(self) -> int:
        return self.incoming - self.created - self.updated

    @property
    def changes(self) -> int:
        return self.created + self.updated + self.deleted

    @property
    def rows_after(self) -> int:
        return self.live_rows - self.deleted + self.created

    def as_dict(self) -> dict:
        return {
            "live_rows": self.live_rows,
            "new_rows": self.rows_after,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "emptied": self.emptied,
            "filled": self.filled,
            "samples": self.samples,
        }


class Staging:
    """A temporary table shaped like the live table of `datatype`, plus `line_no` and a `bad` flag.

    Use as a context manager: the temporary tables are dropped on exit whatever happened.
    """

    def __init__(self, datatype: DataType):
        self.datatype = datatype
        self.model = datatype.model
        self.versions = datatype.model.Versions
        self.live = qn(self.model._meta.db_table)
        self.history = qn(self.versions._meta.db_table)
        self.fields = data_fields(self.model)
        self.data_columns = [f.column for f in self.fields]
        self.columns = ["natural_key", *self.data_columns, *STAMPS]
        suffix = f"{datatype.name}_{uuid.uuid4().hex[:8]}"
        self.table = qn(f"finalesync_stage_{suffix}")
        self.diff_table = qn(f"finalesync_diff_{suffix}")
        self.staged = 0
        self.bad = 0
        self.examples: list[BadRow] = []
        self._diff: Diff | None = None
        # The staged keys, to see in memory (not with a query over the whole table) whether any repeats.
        self._keys: list[pa.Array] = []
        self._good: int | None = None
        # Rows the diff found equal but read from a new line (see diff()).
        self._renew = 0
        # The live table was empty: every good staged row is created, without a diff table (see diff()).
        self._all_new = False
        # The lines the reader passed over, when it did (see pass_over()).
        self.unchanged: UnchangedLines | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------
    def __enter__(self):
        cols = ", ".join(qn(c) for c in self.columns)
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {self.table} AS SELECT {cols} FROM {self.live} WHERE 1 = 0"
            )
            cursor.execute(f"ALTER TABLE {self.table} ADD COLUMN line_digest bigint")
            cursor.execute(f"ALTER TABLE {self.table} ADD COLUMN line_no bigint")
            cursor.execute(f"ALTER TABLE {self.table} ADD COLUMN bad smallint")
        return self

    def __exit__(self, *exc):
        for table in (self.table, self.diff_table):
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP TABLE IF EXISTS {table}")
            except Exception:  # noqa: BLE001,S110 - a broken connection drops temporary tables by itself
                pass

    # --- loading ----------------------------------------------------------------------------------------------
    def pass_over(self) -> UnchangedLines:
        """The live rows' line digests, for a reader to pass over the lines that have not changed. Call
        before load(); the batches loaded must then be read with it."""
        self.unchanged = UnchangedLines.load(self.live)
        return self.unchanged

    def load(self, batches: Iterable[Parsed], *, on_batch: Callable[[int], None] | None = None) -> None:
        """Stage parsed batches (good rows, and bad rows that have a key: their live row is kept)."""
        names = ["natural_key", *self.data_columns, "line_digest", "line_no", "bad"]
        # Its own transaction (a savepoint when nested): a stream that breaks mid-COPY must not leave the
        # caller's transaction aborted.
        with transaction.atomic():
            for parsed in batches:
                self.bad += parsed.bad
                self.examples.extend(parsed.examples[: max(0, SAMPLE - len(self.examples))])
                table = parsed.table.rename_columns(
                    [
                        "natural_key",
                        *(f.column for f in self._field_list()),
                        "extra",
                        "line_digest",
                        "line_no",
                        "bad",
                    ]
                ).select(names)
                if table.num_rows:
                    self._keys.append(table.column("natural_key").combine_chunks())
                    self._write(self.table, table, names)
                    self.staged += table.num_rows
                    self._good = None
                if on_batch:
                    on_batch(
                        self.staged + self.bad + (self.unchanged.passed if self.unchanged is not None else 0)
                    )
        self.index()

    def _field_list(self) -> list[models.Field]:
        return [self.model._meta.get_field(name) for name in self.datatype.fields]

    def _write(self, target: str, table: pa.Table, names: list[str]) -> None:
        """Append the rows of `table` to the table `target` (quoted), into the columns `names`."""
        if connection.vendor == "postgresql":
            buffer = io.BytesIO()
            pcsv.write_csv(table, buffer, pcsv.WriteOptions(include_header=False))
            sql = f"COPY {target} ({', '.join(qn(n) for n in names)}) FROM STDIN WITH (FORMAT csv)"
            with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
                view = buffer.getbuffer()
                for start in range(0, len(view), 1 << 20):
                    copy.write(view[start : start + (1 << 20)])
                del view
        else:
            sql = (
                f"INSERT INTO {target} ({', '.join(qn(n) for n in names)}) "
                f"VALUES ({', '.join(['%s'] * len(names))})"
            )
            columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
            rows = list(zip(*columns, strict=True))
            with connection.cursor() as cursor:
                for start in range(0, len(rows), INSERT_BATCH):
                    cursor.executemany(sql, rows[start : start + INSERT_BATCH])

    def load_state(self, seq: int) -> int:
        """Stage the type's state at history sequence number `seq` (a restore): the newest version of each
        key with seq <= `seq`, unless it is a deletion. Returns the number of rows staged."""
        cols = ", ".join(qn(c) for c in self.columns)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.table} ({cols}, line_no, bad) "
                f"SELECT {cols}, 0, 0 FROM ({state_sql(self.history, self.columns)}) state",
                [seq],
            )
            self.staged += cursor.rowcount
        self._good = None
        self.index()
        return self.staged

    def index(self) -> None:
        """Prepare the staged rows for the comparison; call once after loading."""
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Temporary tables are never auto-analysed; without statistics the joins go nested-loop.
                # With them PostgreSQL hash-joins. The joins need the row count and the key's spread only: a
                # small sample of two columns will do (a full ANALYZE of 100,000 rows costs half a second).
                with transaction.atomic():
                    cursor.execute("SET LOCAL default_statistics_target = 10")
                    cursor.execute(f"ANALYZE {self.table} (natural_key, bad)")
            else:
                cursor.execute(
                    f"CREATE INDEX {qn(self.table.strip(chr(34)) + '_key')} ON {self.table} (natural_key)"
                )

    # --- checks before applying ---------------------------------------------------------------------------------
    def scalar(self, sql: str, params=()) -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0] or 0

    def live_count(self) -> int:
        return self.scalar(f"SELECT count(*) FROM {self.live}")

    def drop_duplicates(self) -> tuple[int, list[str]]:
        """Leave one staged row per key: the first good row of a key (a bad row of that key no longer
        matters), else its first bad row. Returns how many later good rows were dropped and some of their
        keys. Lines passed over count as good rows of their live row's key."""
        repeats, repeated = self._settle_unchanged()
        if _surely_distinct(self._keys):
            return repeats, repeated
        self._good = None
        duplicates, examples = self._drop_staged_duplicates()
        return repeats + duplicates, sorted({*repeated, *examples})[:SAMPLE]

    def _settle_unchanged(self) -> tuple[int, list[str]]:
        """The lines passed over: which live rows they keep. A live row whose key was also read from another
        line is staged as it is (the line passed over reads as that row), at the passed-over line's number, so
        that the first of them wins like any repeated key."""
        if self.unchanged is None:
            return 0, []
        staged = pa.concat_arrays(self._keys) if self._keys else None
        repeats, examples, clashes = self.unchanged.settle(staged)
        if clashes:
            cols = ", ".join(qn(c) for c in ["natural_key", *self.data_columns, *STAMPS, "line_digest"])
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {self.table} ({cols}, line_no, bad) SELECT {cols}, %s, 0 FROM {self.live} "
                    "WHERE id = %s",
                    [(number, live_id) for live_id, number, _ in clashes],
                )
            self.staged += len(clashes)
            self._good = None
            self._keys.append(pa.array([key for _, _, key in clashes], pa.string()))
        return repeats, examples

    def _drop_staged_duplicates(self) -> tuple[int, list[str]]:
        t = self.table
        duplicates = self.scalar(f"SELECT count(*) - count(DISTINCT natural_key) FROM {t} WHERE bad = 0")
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {t} WHERE bad = 1 AND (EXISTS (SELECT 1 FROM {t} g WHERE g.bad = 0 AND "
                f"g.natural_key = {t}.natural_key) OR line_no > (SELECT min(b.line_no) FROM {t} b "
                f"WHERE b.bad = 1 AND b.natural_key = {t}.natural_key))"
            )
            if not duplicates:
                return 0, []
            cursor.execute(
                f"SELECT natural_key FROM {t} WHERE bad = 0 GROUP BY natural_key HAVING count(*) > 1 "
                f"ORDER BY natural_key LIMIT {SAMPLE}"
            )
            examples = [r[0] for r in cursor.fetchall()]
            cursor.execute(
                f"DELETE FROM {t} WHERE bad = 0 AND line_no > "
                f"(SELECT min(d.line_no) FROM {t} d WHERE d.bad = 0 AND d.natural_key = {t}.natural_key)"
            )
        return duplicates, examples

    def good_count(self) -> int:
        """Good rows: staged (counted once: after drop_duplicates they do not change), and those of the lines
        passed over."""
        if self._good is None:
            self._good = self.scalar(f"SELECT count(*) FROM {self.table} WHERE bad = 0")
        return self._good + (self.unchanged.kept_count if self.unchanged is not None else 0)

    def diff(self, *, stamps: bool = False, emptied_ratio: float | None = None) -> Diff:
        """Compare the staged rows with the live table, key by key and value by value. With `stamps` (a
        restore) the created/updated times count as values too. `emptied_ratio` is the data check's limit on
        emptied values (safety.py): a column emptied in too few rows to reach it, whatever the live table
        holds, is not counted in the whole live table."""
        if (
            self.unchanged is None
            and not stamps
            and not self.scalar(f"SELECT count(*) FROM (SELECT 1 FROM {self.live} LIMIT 1) l")
        ):
            return self._all_new_diff()
        t, live, d = self.table, self.live, self.diff_table
        compared = [*self.data_columns, *(STAMPS if stamps else ())]
        if connection.vendor == "postgresql":
            differs = (
                f"({', '.join(f'l.{qn(c)}' for c in compared)}) IS DISTINCT FROM "
                f"({', '.join(f's.{qn(c)}' for c in compared)})"
            )
        else:
            differs = "(" + " OR ".join(f"l.{qn(c)} IS NOT s.{qn(c)}" for c in compared) + ")"
        # Per column that can lose a value: whether an updated row loses it (read by _emptied(), so that the
        # evidence needs no second join of the live table).
        emptied = "".join(
            f", CASE WHEN {filled.format('l')} AND NOT {filled.format('s')} THEN 1 ELSE 0 END AS {qn('e_' + c)}"
            for c, filled in self._can_empty().items()
        )
        # A sync (not a restore) also lists the rows whose values are equal but whose line is new ('g': the line
        # was written differently, or read by new code): apply() gives them the new line's digest.
        if stamps:
            renewed, renewing = "", ""
        else:
            distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
            renewed = f"WHEN NOT ({differs}) THEN 'g' "
            renewing = f" OR l.line_digest {distinct} s.line_digest"
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Enough memory for the hash join of a million-row type; only for this transaction.
                cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute(f"DROP TABLE IF EXISTS {d}")
            if self.unchanged is None:
                # One pass over both tables (one staged row per key, see drop_duplicates): a key only staged
                # is created, only live is deleted (a bad staged row keeps its live row), in both with other
                # values is updated.
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {d} AS "
                    f"SELECT coalesce(s.natural_key, l.natural_key) AS natural_key, l.id AS live_id, "
                    f"CASE WHEN l.id IS NULL THEN 'c' WHEN s.natural_key IS NULL THEN 'd' {renewed}ELSE 'u' END "
                    f"AS kind, s.line_digest AS line_digest{emptied} "
                    f"FROM {t} s FULL JOIN {live} l ON l.natural_key = s.natural_key "
                    f"WHERE s.natural_key IS NULL OR (s.bad = 0 AND (l.id IS NULL OR {differs}{renewing}))"
                )
            else:
                # Only the lines read are staged: they create or update; the live rows that neither they nor
                # the lines passed over name are deleted (worked out in memory, see UnchangedLines).
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {d} AS "
                    f"SELECT s.natural_key AS natural_key, l.id AS live_id, "
                    f"CASE WHEN l.id IS NULL THEN 'c' {renewed}ELSE 'u' END AS kind, s.line_digest AS line_digest"
                    f"{emptied} FROM {t} s LEFT JOIN {live} l ON l.natural_key = s.natural_key "
                    f"WHERE s.bad = 0 AND (l.id IS NULL OR {differs}{renewing})"
                )
                gone = self.unchanged.deletions()
                if gone.num_rows:
                    gone = gone.append_column("kind", pa.array(["d"] * gone.num_rows, pa.string()))
                    self._write(d, gone, ["natural_key", "live_id", "kind"])
            if connection.vendor == "postgresql":
                # The apply joins it with 100,000s of rows: without statistics the planner takes it for a
                # handful and walks an index once per row.
                cursor.execute(f"ANALYZE {d}")
            cursor.execute(f"SELECT kind, count(*) FROM {d} GROUP BY kind")
            kinds = dict(cursor.fetchall())
        self._renew = kinds.get("g", 0)
        result = Diff(
            live_rows=len(self.unchanged) if self.unchanged is not None else self.live_count(),
            incoming=self.good_count(),
            created=kinds.get("c", 0),
            updated=kinds.get("u", 0),
            deleted=kinds.get("d", 0),
        )
        if self.bad:
            result.kept_bad = self.scalar(
                f"SELECT count(DISTINCT s.natural_key) FROM {t} s WHERE s.bad = 1 "
                f"AND EXISTS (SELECT 1 FROM {live} l WHERE l.natural_key = s.natural_key) "
                f"AND NOT EXISTS (SELECT 1 FROM {t} g WHERE g.bad = 0 AND g.natural_key = s.natural_key)"
            )
        for kind, label in (("d", "deleted"), ("u", "updated"), ("c", "created")):
            if kinds.get(kind):
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT natural_key FROM {d} WHERE kind = %s ORDER BY natural_key LIMIT {SAMPLE}",
                        [kind],
                    )
                    result.samples[label] = [r[0] for r in cursor.fetchall()]
        if result.updated:
            self._emptied(result, emptied_ratio)
        self._diff = result
        return result

    def _all_new_diff(self) -> Diff:
        """A sync into an empty live table (a type's first): every good staged row is created. Nothing to
        compare, so no diff table; apply() copies the staged rows as they are."""
        good = self.good_count()
        result = Diff(live_rows=0, incoming=good, created=good)
        if good:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT natural_key FROM {self.table} WHERE bad = 0 ORDER BY natural_key LIMIT {SAMPLE}"
                )
                result.samples["created"] = [r[0] for r in cursor.fetchall()]
        self._all_new = True
        self._diff = result
        return result

    def _can_empty(self) -> dict[str, str]:
        """The columns a row can lose a value in (not JSON, not a column that always has one), each with its
        SQL condition for holding a value."""
        checked = (f for f in self.fields if not isinstance(f, models.JSONField))
        return {f.column: _filled(f) for f in checked if _filled(f) != "TRUE"}

    def _emptied(self, result: Diff, ratio: float | None) -> None:
        """Per column: how many updated rows lose a value they have now (flagged in the diff table); and, for
        those columns, how many live rows have a value at all (the check needs it only when more than `ratio`
        of half the live rows would lose it)."""
        filled = self._can_empty()
        if not filled:
            return
        d = self.diff_table
        with connection.cursor() as cursor:
            counts = ", ".join(f"coalesce(sum({qn('e_' + c)}), 0)" for c in filled)
            cursor.execute(f"SELECT {counts} FROM {d} WHERE kind = 'u'")
            emptied = {c: n for c, n in zip(filled, cursor.fetchone(), strict=True) if n}
        if not emptied:
            return
        names = {f.column: f.name for f in self.fields}
        result.emptied = {names[c]: n for c, n in emptied.items()}
        counted = [c for c, n in emptied.items() if ratio is None or n > ratio * result.live_rows / 2]
        with connection.cursor() as cursor:
            if counted:
                live_counts = ", ".join(
                    f"count(CASE WHEN {filled[c].format('l')} THEN 1 END)" for c in counted
                )
                cursor.execute(f"SELECT {live_counts} FROM {self.live} l")
                result.filled = {names[c]: n for c, n in zip(counted, cursor.fetchone(), strict=True)}
            worst = max(emptied, key=emptied.get)
            cursor.execute(
                f"SELECT natural_key FROM {d} WHERE kind = 'u' AND {qn('e_' + worst)} = 1 "
                f"ORDER BY natural_key LIMIT {SAMPLE}"
            )
            result.samples[f"emptied {names[worst]}"] = [r[0] for r in cursor.fetchall()]

    # --- applying (call inside transaction.atomic) -------------------------------------------------------------
    def apply(self, *, seq: int, now, stamps: bool = False) -> Diff:
        """Write the diff: the new version of every created or updated row and a deletion for every deleted
        key go into the row history under `seq`, then the live table is made to match them. Call after
        `diff()`, inside a transaction. With `stamps` (a restore) the staged created/updated times are kept;
        otherwise new rows are stamped `now` and updated rows keep their created time.

        Line digests (finalesync/unchanged.py): a sync gives every row it read the digest of its line, also
        when its values did not change; a restore clears the digest of every row it changes."""
        result = self._diff
        if result is None:
            raise RuntimeError("diff() must run before apply()")
        if not result.changes:
            self._renew_digests()
            return result
        t, live, d, h = self.table, self.live, self.diff_table, self.history
        stamp = connection.ops.adapt_datetimefield_value(now)
        data = ", ".join(qn(c) for c in self.data_columns)
        s_data = ", ".join(f"s.{qn(c)}" for c in self.data_columns)
        if self._all_new:
            # Every good staged row is new: straight into the history and the live table, no joins.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {h} (natural_key, seq, deleted, {data}, created_at, updated_at) "
                    f"SELECT s.natural_key, %s, {_false()}, {s_data}, %s, %s FROM {t} s WHERE s.bad = 0",
                    [seq, stamp, stamp],
                )
                cursor.execute(
                    f"INSERT INTO {live} (natural_key, {data}, created_at, updated_at, line_digest) "
                    f"SELECT s.natural_key, {s_data}, %s, %s, s.line_digest FROM {t} s WHERE s.bad = 0",
                    [stamp, stamp],
                )
            return result
        if stamps:
            stamp_values, params = "s.created_at, s.updated_at", [seq]
        else:
            stamp_values, params = "COALESCE(l.created_at, %s), %s", [seq, stamp, stamp]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Enough memory for the hash joins of a million-row type; only for this transaction.
                cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute(
                f"INSERT INTO {h} (natural_key, seq, deleted, {data}, created_at, updated_at) "
                f"SELECT s.natural_key, %s, {_false()}, {s_data}, {stamp_values} "
                f"FROM {d} d JOIN {t} s ON s.natural_key = d.natural_key AND s.bad = 0 "
                f"LEFT JOIN {live} l ON l.id = d.live_id WHERE d.kind IN ('c', 'u')",
                params,
            )
            if result.deleted:
                cursor.execute(
                    f"INSERT INTO {h} (natural_key, seq, deleted, updated_at) "
                    f"SELECT natural_key, %s, {_true()}, %s FROM {d} WHERE kind = 'd'",
                    [seq, stamp],
                )
                cursor.execute(f"DELETE FROM {live} WHERE id IN (SELECT live_id FROM {d} WHERE kind = 'd')")
            if result.updated:
                assigned = ", ".join(f"{qn(c)} = v.{qn(c)}" for c in [*self.data_columns, *STAMPS])
                if stamps:
                    assigned, sources = f"{assigned}, line_digest = NULL", f"{h} v"
                else:
                    assigned = f"{assigned}, line_digest = s.line_digest"
                    sources = f"{h} v JOIN {t} s ON s.natural_key = v.natural_key AND s.bad = 0"
                cursor.execute(
                    f"UPDATE {live} SET {assigned} FROM {sources} "
                    f"WHERE v.seq = %s AND v.natural_key = {live}.natural_key AND NOT v.deleted",
                    [seq],
                )
            if result.created:
                # From the staged rows (which have statistics), with the same values the history got.
                new_stamps, stamp_params = (
                    ("s.created_at, s.updated_at", []) if stamps else ("%s, %s", [stamp, stamp])
                )
                cursor.execute(
                    f"INSERT INTO {live} (natural_key, {data}, created_at, updated_at, line_digest) "
                    f"SELECT s.natural_key, {s_data}, {new_stamps}, s.line_digest FROM {d} d "
                    f"JOIN {t} s ON s.natural_key = d.natural_key AND s.bad = 0 WHERE d.kind = 'c'",
                    stamp_params,
                )
        self._renew_digests()
        return result

    def _renew_digests(self) -> None:
        """Give the live rows whose line changed without changing what it reads as (the diff's 'g' rows) their
        new line's digest; updated rows got theirs with their values."""
        if not self._renew:
            return
        live, d = self.live, self.diff_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {live} SET line_digest = d.line_digest FROM {d} d "
                f"WHERE d.kind = 'g' AND d.live_id = {live}.id"
            )


def _surely_distinct(batches: list[pa.Array]) -> bool:
    """Whether no key repeats, found without a hash table of a million keys: keys in ascending order (as
    Finale sorts its reports) are distinct; otherwise a few are counted here, and many are left to the
    database (False)."""
    last = None
    for keys in batches:
        if not len(keys):
            continue
        if (len(keys) > 1 and not pc.all(pc.less(keys[:-1], keys[1:])).as_py()) or (
            last is not None and not last < keys[0].as_py()
        ):
            break
        last = keys[-1].as_py()
    else:
        return True
    if sum(len(k) for k in batches) > DISTINCT_IN_MEMORY:
        return False
    keys = pa.concat_arrays(batches)
    return pc.count_distinct(keys).as_py() == len(keys)


def state_sql(history: str, columns: list[str]) -> str:
    """SQL for the state at history sequence number %s: per key the newest version at or before it, unless
    that version is a deletion."""
    cols = ", ".join(qn(c) for c in columns)
    return (
        f"SELECT {cols} FROM (SELECT v.*, row_number() OVER "
        f"(PARTITION BY v.natural_key ORDER BY v.seq DESC) AS newest FROM {history} v WHERE v.seq <= %s) ranked "
        f"WHERE newest = 1 AND NOT deleted"
    )


def _filled(f: models.Field) -> str:
    """An SQL condition (with `{}` for the table alias) that the column holds a value."""
    if f.null:
        return f"{{}}.{qn(f.column)} IS NOT NULL"
    return f"{{}}.{qn(f.column)} <> ''" if isinstance(f, (models.CharField, models.TextField)) else "TRUE"


def _true() -> str:
    return "TRUE" if connection.vendor == "postgresql" else "1"


def _false() -> str:
    return "FALSE" if connection.vendor == "postgresql" else "0"
