"""What a data type is: where its data comes from, how rows are read, and which table they land in.

A data type module declares a `MirroredRow` model and a `DataType` subclass instance named `DATATYPE`;
`registry.py` finds the modules by themselves, so adding a type is adding one module (and its migration).

Parsing is a stream: `records()` yields `Record`s and `BadRow`s one at a time, never a list of them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Set
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import __version__
from ..errors import EmptyData, SchemaError

KEY_SEPARATOR = " / "


@dataclass(frozen=True, slots=True)
class Record:
    """One parsed row: its natural key, its values in `DataType.fields` order, and unknown columns."""

    key: str
    values: tuple
    extra: dict
    # Digest of the raw cells this record was parsed from (report types), so an unchanged row can be
    # recognised next time without parsing it again. Empty when there are no raw cells (order JSON).
    source: str = ""

    def extra_json(self) -> str:
        return json.dumps(self.extra, sort_keys=True, ensure_ascii=False) if self.extra else "{}"

    def row_hash(self, extra_json: str | None = None) -> str:
        """Digest of key, values and extras; pass `extra_json` when the caller has serialised it already."""
        parts = [self.key]
        parts.extend("\x00" if v is None else str(v) for v in self.values)
        extra = self.extra_json() if extra_json is None else extra_json
        parts.append("" if extra == "{}" else extra)
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A row whose raw cells are exactly those the live row of `key` was parsed from: not parsed again."""

    key: str


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be read. With a key, the existing row of that key is kept as it is."""

    line: int
    reason: str
    key: str | None = None


class RowError(ValueError):
    """Raised by a value parser or row parser for one bad row; the sync counts it and goes on."""


# --- value parsers: text in, canonical value out, RowError when the text is not that kind of value ---------
_NUMBER_NOISE = str.maketrans("", "", "$€£ ,\u00a0")
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$")


def text(value: str) -> str:
    if "\x00" in value:
        raise RowError("contains a NUL byte")
    return value.strip()


def number(value: str) -> str | None:
    """'1,234.50', '$12', '(3.5)', ' ' → '1234.50', '12', '-3.5', None. Kept as canonical text so the
    hash of an unchanged row stays the same and no float rounding creeps in."""
    # Most cells are plain digits: skip the general path for them (a third of a big sync's parse time).
    if value.isascii() and len(value) <= 14 and (value.isdigit() or value.replace(".", "", 1).isdigit()):
        return value  # plain digits or a plain decimal such as 12.50: already canonical
    value = value.strip()
    if not value:
        return None
    negative = value.startswith("(") and value.endswith(")")
    cleaned = value.strip("()").translate(_NUMBER_NOISE)
    if not _NUMBER.match(cleaned):
        raise RowError(f"not a number: {value[:40]!r}")
    integer_digits = len(cleaned.lstrip("+-").split(".")[0].lstrip("0"))
    if integer_digits > 14:
        raise RowError(f"number too large: {value[:40]!r}")
    if negative and not cleaned.startswith("-"):
        cleaned = "-" + cleaned
    return cleaned


def normalise_header(cell: str) -> str:
    """Case- and whitespace-insensitive form of a column name ('Potential \\n Build \\n Qty' → 'potential build qty')."""
    return " ".join(cell.replace("\ufeff", "").split()).lower()


@dataclass(frozen=True)
class Column:
    field: str
    aliases: tuple[str, ...]
    parse: Callable[[str], Any] = text
    required: bool = False


@dataclass
class HeaderMap:
    """Where each known column sits in the header, and which cells are unknown extras."""

    positions: dict[str, int]
    extras: list[tuple[int, str]]
    width: int
    missing_required: list[str] = field(default_factory=list)


class DataType:
    """Base of every data type. Subclasses set the class attributes and implement `records()`."""

    name: ClassVar[str]
    label: ClassVar[str]
    model: ClassVar[type]
    default_interval_minutes: ClassVar[int]
    source: ClassVar[str]  # "report" or "orders"
    description: ClassVar[str] = ""

    @property
    def fields(self) -> tuple[str, ...]:
        raise NotImplementedError

    def records(
        self, source: Iterable, *, known: Set[int] = frozenset()
    ) -> Iterator[Record | BadRow | Unchanged]:
        """Parse `source` into records. `known` holds the source digests of the live rows: a row whose digest
        is among them may be yielded as Unchanged instead of being parsed."""
        raise NotImplementedError

    def __repr__(self):
        return f"<DataType {self.name}>"


class ReportDataType(DataType):
    """A data type read from a Finale pivot-report CSV export."""

    source = "report"
    columns: ClassVar[tuple[Column, ...]]
    key_columns: ClassVar[tuple[str, ...]]
    # Names that identify a header row (besides the key column's aliases).
    header_markers: ClassVar[tuple[str, ...]] = ("name", "description", "product id", "sku")
    max_preamble_rows: ClassVar[int] = 50

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.columns)

    def map_header(self, header: list[str]) -> HeaderMap:
        """Assign each header cell to the first still-unassigned column it names; the rest are extras.
        A name that appears twice (the BOM report's two 'Description's) fills two columns in order."""
        positions: dict[str, int] = {}
        extras: list[tuple[int, str]] = []
        for index, cell in enumerate(header):
            norm = normalise_header(cell)
            if not norm:
                continue
            for column in self.columns:
                if column.field not in positions and norm in self._aliases[column.field]:
                    positions[column.field] = index
                    break
            else:
                extras.append((index, " ".join(cell.split())))
        missing = [c.aliases[0] for c in self.columns if c.required and c.field not in positions]
        return HeaderMap(positions=positions, extras=extras, width=len(header), missing_required=missing)

    @property
    def _aliases(self) -> dict[str, frozenset[str]]:
        cached = self.__dict__.get("_alias_cache")
        if cached is None:
            cached = {c.field: frozenset(normalise_header(a) for a in c.aliases) for c in self.columns}
            self.__dict__["_alias_cache"] = cached
        return cached

    def is_header(self, row: list[str]) -> bool:
        cells = [normalise_header(c) for c in row]
        if sum(1 for c in cells if c) < 3:
            return False
        markers = set(self.header_markers)
        for key_field in self.key_columns:
            markers |= self._aliases[key_field]
        return any(c in markers for c in cells)

    def find_header(self, rows: Iterator[list[str]]) -> HeaderMap:
        """Consume rows up to and including the header; raise EmptyData or SchemaError when there is none."""
        seen_any = False
        for count, row in enumerate(rows):
            if any(cell.strip() for cell in row):
                seen_any = True
            if self.is_header(row):
                header = self.map_header(row)
                if header.missing_required:
                    raise SchemaError(
                        f"{self.label} report lacks required column(s): {', '.join(header.missing_required)}",
                        details={"header": [" ".join(c.split()) for c in row][:60]},
                    )
                return header
            if count >= self.max_preamble_rows:
                break
        if not seen_any:
            raise EmptyData(f"{self.label} report is empty (no header, no rows)")
        raise SchemaError(f"{self.label} report has no recognisable header row in its first lines")

    def records(
        self, source: Iterable[list[str]], *, known: Set[int] = frozenset()
    ) -> Iterator[Record | BadRow | Unchanged]:
        rows = iter(source)
        header = self.find_header(rows)
        yield from self.parse_rows(rows, header, known)

    def source_prefix(self, header: HeaderMap) -> bytes:
        """What a row's raw cells mean: the same cells under another header, or read by another version of
        the parser, are a different row."""
        return f"{__version__}|{self.fields}|{sorted(header.positions.items())}|{header.extras}|".encode()

    def parse_rows(
        self, rows: Iterator[list[str]], header: HeaderMap, known: Set[int] = frozenset()
    ) -> Iterator[Record | BadRow | Unchanged]:
        getters = [(c.field, header.positions.get(c.field), c.parse) for c in self.columns]
        key_positions = [header.positions[k] for k in self.key_columns]
        key_names = [next(c.aliases[0] for c in self.columns if c.field == k) for k in self.key_columns]
        extras = header.extras
        width = header.width
        prefix = self.source_prefix(header)
        blake2b = hashlib.blake2b
        line = 0
        for line, row in enumerate(rows, start=1):
            if not any(row):
                continue
            key = None
            try:
                if len(row) != width:
                    # Exports may omit trailing empty cells; surplus cells that carry data mean a shifted row.
                    if len(row) > width and any(cell.strip() for cell in row[width:]):
                        raise RowError(f"has {len(row)} cells, the header has {width}")
                    row = (row + [""] * (width - len(row)))[:width]
                parts = [row[i].strip() for i in key_positions]
                if not all(parts):
                    raise RowError(
                        f"has no {' / '.join(n for n, p in zip(key_names, parts, strict=True) if not p)}"
                    )
                key = KEY_SEPARATOR.join(parts)
                if len(key) > 255:
                    raise RowError("key longer than 255 characters")
                digest = blake2b(prefix + "\x1e".join(row).encode(), digest_size=8).digest()
                if known and int.from_bytes(digest) in known:
                    yield Unchanged(key)
                    continue
                values = tuple([parse(row[pos] if pos is not None else "") for _, pos, parse in getters])
            except RowError as exc:
                yield BadRow(line=line, reason=str(exc), key=key or None)
                continue
            extra = {name: row[i] for i, name in extras if row[i]} if extras else {}
            yield Record(key, values, extra, digest.hex())
