"""What a data type is: where its data comes from, how its rows are read, and which table they land in.

A data type module declares a `MirroredRow` model and a `DataType` subclass instance named `DATATYPE`;
`registry.py` finds the modules by themselves, so adding a type is adding one module (and its migration).

A data type brings its own fetch: `open(client=..., report_url=...)` is a context manager yielding a `Source`
whose `batches()` are pyarrow tables of raw values, a large batch at a time ("raw batches": the columns
`_line`, `_key`, `_error`, `_extra`, optionally `_digest`, and one column per field). `finish()` checks and cleans them against the
model's fields (finalesync/values.py) into the rows the engine stages. The pipeline never asks where the data
came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from .. import values
from ..errors import ConfigurationError, SchemaError
from ..mirror import MirroredRow, data_fields
from ..parsing import DIGEST, ERROR, LINE, Header, ReportReader, normalise_header
from ..unchanged import UnchangedLines, line_salt

KEY_SEPARATOR = " / "
KEY = "_key"
EXTRA = "_extra"
MAX_KEY_LENGTH = MirroredRow._meta.get_field("natural_key").max_length
NULL_TEXT = pa.scalar(None, pa.string())


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be read. With a key, the existing row of that key is kept as it is."""

    line: int | None
    reason: str
    key: str | None = None


@dataclass
class Parsed:
    """One batch ready to stage: `table` has `natural_key`, the fields, `extra`, `line_no` and `bad` (1 for
    unreadable rows that have a key: their live row is kept); rows without a key are only counted."""

    table: pa.Table
    bad: int = 0
    examples: list[BadRow] = field(default_factory=list)


class Source:
    """What a data type's `open()` yields: raw batches, and afterwards whether the transfer's end was
    verified (None when the source cannot tell).

    A source that `passes_over_unchanged` takes an UnchangedLines in `batches()` and leaves out the rows of
    the lines it recognises (finalesync/unchanged.py); others read everything."""

    end_verified: bool | None = None
    passes_over_unchanged: bool = False

    def batches(self, *, unchanged: UnchangedLines | None = None) -> Iterator[pa.Table]:
        raise NotImplementedError


class DataType:
    """Base of every data type. Subclasses set the class attributes and implement `open()`."""

    name: ClassVar[str]
    label: ClassVar[str]
    model: ClassVar[type]
    default_interval_minutes: ClassVar[int]
    description: ClassVar[str] = ""
    # Fields without which the data means nothing: a source that lacks one is a schema error.
    required: ClassVar[tuple[str, ...]] = ()
    # Fields the data type fills with final values itself (not checked by a value rule).
    computed: ClassVar[frozenset[str]] = frozenset()
    # Where the type's data lives: "report" (a report URL per type) or "api" (Finale's REST API).
    source_kind: ClassVar[str] = "report"
    # Trim surrounding whitespace from text values.
    trim_text: ClassVar[bool] = True
    # Where the type goes in lists (dashboard cards, commands): lower first.
    position: ClassVar[int] = 100

    @property
    def fields(self) -> tuple[str, ...]:
        """The model's data columns in staging order (without `natural_key`, `extra` and the stamps)."""
        return tuple(f.name for f in data_fields(self.model) if f.name != "extra")

    @contextmanager
    def open(self, *, client, report_url: str = "") -> Iterator[Source]:
        raise NotImplementedError
        yield  # pragma: no cover

    def __repr__(self):
        return f"<DataType {self.name}>"

    # --- turning raw batches into rows to stage ---------------------------------------------------------------
    def rules(self) -> dict[str, Any]:
        cached = self.__dict__.get("_rules")
        if cached is None:
            cached = {}
            for name in self.fields:
                if name not in self.computed:
                    rule = values.rule_for(self.model._meta.get_field(name), trim=self.trim_text)
                    if rule is not None:
                        cached[name] = rule
            self.__dict__["_rules"] = cached
        return cached

    def finish(self, raw: pa.Table, *, max_examples: int = 5) -> Parsed:
        """Check and clean one raw batch against the model's fields. A row with any bad value (or no key, a
        key too long, a NUL byte) becomes a bad row; the first reason found is its reason."""
        key = _array(raw[KEY])
        too_long = pc.fill_null(pc.greater(pc.utf8_length(key), MAX_KEY_LENGTH), False)
        reasons: list[tuple[pa.Array, Any]] = []  # (mask, reason or function of the raw value)
        if pc.any(too_long).as_py():
            reasons.append((too_long, f"key longer than {MAX_KEY_LENGTH} characters"))
            key = pc.if_else(too_long, NULL_TEXT, key)
        cleaned = {}
        for name in self.fields:
            column = _array(raw[name])
            rule = self.rules().get(name)
            if rule is None:
                cleaned[name] = column
                continue
            column, bad = rule.clean(column)
            cleaned[name] = column
            if bad is not None:
                # A value that is missing (null) is not a bad value: the row's own error says why it is missing.
                reasons.append((pc.fill_null(bad, False), (rule, name)))
        error = _array(raw[ERROR])
        bad_any = pc.or_(pc.is_valid(error), pc.is_null(key))
        for mask, _ in reasons:
            bad_any = pc.or_(bad_any, mask)
        bad_count = pc.sum(bad_any).as_py() or 0
        examples = self._examples(raw, error, reasons, bad_any, limit=max_examples) if bad_count else []
        keep = pc.or_(pc.invert(bad_any), pc.is_valid(key))
        columns = {"natural_key": key}
        for name in self.fields:
            columns[name] = pc.if_else(bad_any, pa.scalar(None, cleaned[name].type), cleaned[name])
        columns["extra"] = pc.if_else(bad_any, NULL_TEXT, _array(raw[EXTRA]))
        digest = _array(raw[DIGEST]) if DIGEST in raw.column_names else pa.nulls(len(key), pa.int64())
        columns["line_digest"] = pc.if_else(bad_any, pa.scalar(None, pa.int64()), digest)
        columns["line_no"] = _array(raw[LINE])
        columns["bad"] = pc.cast(bad_any, pa.int8())
        table = pa.table(columns)
        if bad_count:
            table = table.filter(keep)
        return Parsed(table=table, bad=bad_count, examples=examples)

    def _examples(self, raw, error, reasons, bad_any, *, limit) -> list[BadRow]:
        rows = pc.indices_nonzero(bad_any).to_pylist()[:limit]
        out = []
        keys = raw[KEY]
        for i in rows:
            reason = error[i].as_py()
            if reason is None:
                for mask, why in reasons:
                    if mask[i].as_py():
                        if isinstance(why, str):
                            reason = why
                        else:
                            rule, name = why
                            reason = rule.reason(raw[name][i].as_py() or "")
                        break
            key = keys[i].as_py()
            if reason is None and key is None:
                reason = "has no key"
            if key is not None and len(key) > MAX_KEY_LENGTH:
                key = None
            out.append(BadRow(line=raw[LINE][i].as_py(), reason=reason or "unreadable", key=key))
        return out


def _join_present(pieces: list[pa.Array], separator: str) -> pa.Array:
    """Join the non-null pieces of each row with `separator` (null when none is present).
    (pyarrow's own null_handling="skip" drops rows where every piece is null.)"""
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = pc.coalesce(pc.binary_join_element_wise(joined, piece, separator), joined, piece)
    return joined


def _array(column) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


# --- report CSV types ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    field: str
    aliases: tuple[str, ...]


class ReportDataType(DataType):
    """A data type read from a Finale pivot-report CSV export."""

    columns: ClassVar[tuple[Column, ...]]
    key_columns: ClassVar[tuple[str, ...]]
    # Names that identify a header row (besides the key column's aliases).
    header_markers: ClassVar[tuple[str, ...]] = ("name", "description", "product id", "sku")
    max_preamble_rows: ClassVar[int] = 50
    # Whether a line reads the same wherever it stands (not so when a row takes cells from the rows above):
    # then an unchanged line can be passed over (finalesync/unchanged.py).
    lines_stand_alone: ClassVar[bool] = True

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.columns)

    @property
    def aliases(self) -> dict[str, frozenset[str]]:
        cached = self.__dict__.get("_alias_cache")
        if cached is None:
            cached = {c.field: frozenset(normalise_header(a) for a in c.aliases) for c in self.columns}
            self.__dict__["_alias_cache"] = cached
        return cached

    def column_name(self, field_name: str) -> str:
        """The name people know a field's column by (its first spelling)."""
        return next(c.aliases[0] for c in self.columns if c.field == field_name)

    def map_header(self, header: list[str]) -> Header:
        """Assign each header cell to the first still-unassigned column it names; the rest are extras.
        A name that appears twice (the BOM report's two 'Description's) fills two columns in order."""
        positions: dict[str, int] = {}
        extras: list[tuple[int, str]] = []
        aliases = self.aliases
        for index, cell in enumerate(header):
            norm = normalise_header(cell)
            if not norm:
                continue
            for column in self.columns:
                if column.field not in positions and norm in aliases[column.field]:
                    positions[column.field] = index
                    break
            else:
                extras.append((index, " ".join(cell.split())))
        needed = dict.fromkeys([*self.key_columns, *self.required])
        missing = [self.column_name(f) for f in needed if f not in positions]
        return Header(cells=list(header), positions=positions, extras=extras, missing_required=missing)

    def is_header(self, row: list[str]) -> bool:
        cells = [normalise_header(c) for c in row]
        if sum(1 for c in cells if c) < 3:
            return False
        markers = set(self.header_markers)
        for key_field in self.key_columns:
            markers |= self.aliases[key_field]
        return any(c in markers for c in cells)

    def read_header(self, reader: ReportReader) -> Header:
        """The report's header, mapped; SchemaError names the required columns it lacks."""
        row = reader.find_header(self.is_header, max_rows=self.max_preamble_rows)
        header = self.map_header(row)
        if header.missing_required:
            seen = [" ".join(c.split()) for c in row if c.strip()][:60]
            raise SchemaError(
                f"{self.label} report lacks required column(s): {', '.join(header.missing_required)} "
                f"(it has: {', '.join(seen)[:300]})",
                details={"header": seen, "missing": header.missing_required},
            )
        return header

    @contextmanager
    def open(self, *, client, report_url: str = "") -> Iterator[Source]:
        if not report_url:
            raise ConfigurationError(
                f"No report URL for {self.name}: set FINALE_REPORT_URL_{self.name.upper()} "
                "or the data type's report URL in the admin"
            )
        what = f"{self.label.lower()} report"
        with client.open_report(report_url, what=what) as body:
            reader = ReportReader(body, what=what)
            yield ReportSource(self, reader, self.read_header(reader), body)

    def read(self, data: bytes, *, max_examples: int = 5) -> Iterator[Parsed]:
        """Parse a whole report body held in memory (tests, the golden fixtures)."""
        import io

        reader = ReportReader(io.BytesIO(data), what=f"{self.label.lower()} report")
        source = ReportSource(self, reader, self.read_header(reader), None)
        for raw in source.batches():
            yield self.finish(raw, max_examples=max_examples)

    # --- hooks for report-specific row rules (vectorised) ---------------------------------------------------
    def prepare(self, table: pa.Table, header: Header, state: dict) -> pa.Table:
        """Drop or complete rows before they are read as fields (vendor filler rows, BOM parents).
        `state` carries what one batch leaves for the next."""
        return table

    def raw_fields(self, table: pa.Table, header: Header) -> pa.Table:
        """The cells of one batch as a raw batch: key, fields, extras, and a reason for rows already bad."""
        n = table.num_rows
        empty = pa.array([""] * n, pa.string()) if n else pa.array([], pa.string())
        error = _array(table[ERROR])
        parts = [pc.utf8_trim_whitespace(_array(table[f"c{header.positions[k]}"])) for k in self.key_columns]
        missing = None
        for part in parts:
            absent = pc.equal(part, "")
            missing = absent if missing is None else pc.or_(missing, absent)
        if pc.any(missing).as_py():
            names = [self.column_name(k) for k in self.key_columns]
            # 'has no SKU', 'has no Product ID / Component Product ID' — the parts that are empty.
            text = _join_present(
                [pc.if_else(pc.equal(p, ""), name, NULL_TEXT) for p, name in zip(parts, names, strict=True)],
                KEY_SEPARATOR,
            )
            error = pc.coalesce(
                error, pc.if_else(missing, pc.binary_join_element_wise("has no ", text, ""), NULL_TEXT)
            )
        key = pc.binary_join_element_wise(*parts, KEY_SEPARATOR) if len(parts) > 1 else parts[0]
        key = pc.if_else(missing, NULL_TEXT, key)
        nul = None
        for i in range(header.width):
            has = values.has_nul(_array(table[f"c{i}"]))
            nul = has if nul is None else pc.or_(nul, has)
        if nul is not None and pc.any(nul).as_py():
            error = pc.coalesce(error, pc.if_else(nul, "contains a NUL byte", NULL_TEXT))
            key = pc.if_else(pc.and_(nul, pc.match_substring(key, values.NUL)), NULL_TEXT, key)
        columns = {LINE: _array(table[LINE]), KEY: key, ERROR: error, EXTRA: self._extras(table, header, n)}
        if DIGEST in table.column_names:
            columns[DIGEST] = _array(table[DIGEST])
        for f in self.fields:
            at = header.positions.get(f)
            columns[f] = _array(table[f"c{at}"]) if at is not None else empty
        return pa.table(columns)

    def _extras(self, table: pa.Table, header: Header, n: int) -> pa.Array:
        """Unknown columns as a JSON object per row (non-empty cells only, names sorted), as json.dumps would
        write it; "{}" when there are none."""
        if not header.extras or not n:
            return pa.array(["{}"] * n, pa.string())
        pieces = []
        by_name = {}
        for index, name in header.extras:
            by_name[name] = index  # a repeated name keeps its last column, as a dict would
        for name in sorted(by_name):
            cells = _array(table[f"c{by_name[name]}"])
            prefix = json.dumps(name, ensure_ascii=False) + ": "
            pieces.append(
                pc.if_else(
                    pc.equal(cells, ""), NULL_TEXT, pc.binary_join_element_wise(prefix, _json_text(cells), "")
                )
            )
        body = pc.fill_null(_join_present(pieces, ", "), "")
        return pc.binary_join_element_wise("{", body, "}", "")


_JSON_ESCAPES = [
    ("\\", "\\\\"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
    ("\b", "\\b"),
    ("\f", "\\f"),
]


def _json_text(cells: pa.Array) -> pa.Array:
    """Each cell as a JSON string literal (quotes included), escaped exactly as json.dumps does."""
    out = cells
    for plain, escaped in _JSON_ESCAPES:
        if pc.any(pc.match_substring(out, plain)).as_py():
            out = pc.replace_substring(out, plain, escaped)
    control = pc.match_substring_regex(out, r"[\x00-\x1f]")
    if pc.any(control).as_py():
        # Other control characters are rare: let json.dumps write those cells.
        texts = cells.to_pylist()
        fixed = [
            json.dumps(t, ensure_ascii=False)[1:-1] if c else o
            for t, o, c in zip(texts, out.to_pylist(), control.to_pylist(), strict=True)
        ]
        out = pa.array(fixed, pa.string())
    return pc.binary_join_element_wise('"', out, '"', "")


class ReportSource(Source):
    def __init__(self, datatype: ReportDataType, reader: ReportReader, header: Header, body):
        self.datatype = datatype
        self.reader = reader
        self.header = header
        self.body = body

    @property
    def end_verified(self) -> bool | None:
        return getattr(self.body, "end_verified", None)

    @property
    def passes_over_unchanged(self) -> bool:
        return self.datatype.lines_stand_alone

    def batches(self, *, unchanged: UnchangedLines | None = None) -> Iterator[pa.Table]:
        state: dict = {}
        cells = [f"c{i}" for i in range(self.header.width)]
        salt = line_salt(self.datatype, self.header.cells) if self.datatype.lines_stand_alone else None
        for batch in self.reader.batches(self.header, salt=salt, unchanged=unchanged if salt else None):
            table = pa.Table.from_batches([batch])
            blank = None
            for name in cells:
                empty = pc.equal(table[name], "")
                blank = empty if blank is None else pc.and_(blank, empty)
            if blank is not None and pc.any(blank).as_py():
                table = table.filter(pc.invert(blank))
            table = self.datatype.prepare(table, self.header, state)
            yield self.datatype.raw_fields(table, self.header)
