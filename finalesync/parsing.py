"""Reading a Finale report CSV a large batch at a time, with pyarrow's C++ CSV parser.

The body is a stream. The header is found with Python's csv module (it may follow a preamble, span several
lines, repeat a name); everything after it is cut into pieces of a few megabytes that end at a record
boundary (a line end outside quotes: the quote count before it is even), and each piece is parsed by
`pyarrow.csv.read_csv`, every cell as text. A piece with ragged rows (fewer or more cells than the header) is
parsed again with Python's csv module, so short rows are padded, rows with surplus data are bad rows, and
every row keeps its exact record number. Memory stays at a few pieces whatever the report's size.

Given a salt, every line of a piece gets a digest (column `_digest`), and lines that an `UnchangedLines`
recognises are passed over unread (finalesync/unchanged.py).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from django.conf import settings

from .errors import EmptyData, MalformedData, SchemaError, TruncatedResponse
from .unchanged import line_digests

# Bigger pieces keep both cores busier in pyarrow; 4 MiB keeps a million-row sync below 250 MB (8 MiB pieces
# were 4% faster and 75 MB bigger: docs/benchmarks.md).
PIECE_BYTES = 4 << 20
# Rows read from pieces that were mostly passed over are batched up to this many: each batch costs the same
# fixed work (checks per column, a COPY), however few rows it has.
COALESCE_ROWS = 10_000
LINE = "_line"
ERROR = "_error"
DIGEST = "_digest"


def normalise_header(cell: str) -> str:
    """Case- and whitespace-insensitive form of a column name ('Potential \\n Build \\n Qty' → 'potential build qty')."""
    return " ".join(cell.replace("\ufeff", "").split()).lower()


@dataclass
class Header:
    """The header row of a report: its cells, and where each known column of the data type sits."""

    cells: list[str]
    positions: dict[str, int]
    extras: list[tuple[int, str]]
    missing_required: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return len(self.cells)

    @property
    def names(self) -> list[str]:
        """The column names pyarrow reads the cells into (the header's own names may repeat or be empty)."""
        return [f"c{i}" for i in range(self.width)]


def _utf8(data: bytes, *, what: str, offset: int = 0) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedData(
            f"The {what} is not UTF-8 text ({exc.reason} at byte {offset + exc.start})"
        ) from None


class ReportReader:
    """Reads one report body: `header(find=...)` first, then `batches()`.

    `body` is a binary stream (the client's ReportBody); `end_verified` and `ends_with_newline` are read from
    it once it is exhausted, when present.
    """

    def __init__(self, body, *, what: str, piece_bytes: int = PIECE_BYTES):
        self.body = body
        self.what = what
        self.piece_bytes = piece_bytes
        self._buf = b""
        self._pos = 0
        self._offset = 0  # bytes of the body before _buf
        self._eof = False
        self.header_row: list[str] | None = None
        self.rows_read = 0

    # --- the header -----------------------------------------------------------------------------------------
    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self.body.read(1 << 16)
        if not chunk:
            self._eof = True
            return False
        if not self._buf and not self._offset and chunk.startswith(codecs.BOM_UTF8):
            chunk = chunk[len(codecs.BOM_UTF8) :]
            self._offset += len(codecs.BOM_UTF8)
        self._offset += self._pos
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def _lines(self) -> Iterator[str]:
        while True:
            nl = self._buf.find(b"\n", self._pos)
            if nl < 0:
                if self._fill():
                    continue
                if self._pos < len(self._buf):
                    line = self._buf[self._pos :]
                    self._pos = len(self._buf)
                    yield _utf8(line, what=self.what, offset=self._offset)
                return
            line = self._buf[self._pos : nl + 1]
            self._pos = nl + 1
            yield _utf8(line, what=self.what, offset=self._offset)

    def find_header(self, is_header, *, max_rows: int = 50) -> list[str]:
        """Consume rows up to and including the first one `is_header` accepts; return its cells.

        Raises EmptyData when the body has no rows at all, SchemaError when no header shows up in the first
        `max_rows` rows, MalformedData for text that is not UTF-8 or CSV."""
        reader = csv.reader(self._lines())
        seen_any = False
        try:
            for count, row in enumerate(reader):
                if any(cell.strip() for cell in row):
                    seen_any = True
                if is_header(row):
                    if len(row) > settings.FINALE_MAX_COLUMNS:
                        raise MalformedData(
                            f"The {self.what}'s header has {len(row):,} columns, more than the "
                            f"{settings.FINALE_MAX_COLUMNS:,} allowed (FINALE_MAX_COLUMNS)"
                        )
                    self.header_row = row
                    return row
                if count >= max_rows:
                    break
        except csv.Error as exc:
            raise MalformedData(f"The {self.what} is not valid CSV near its start: {exc}") from None
        if not seen_any:
            raise EmptyData(f"The {self.what} is empty (no header, no rows)")
        raise SchemaError(f"The {self.what} has no recognisable header row in its first lines")

    # --- the data -------------------------------------------------------------------------------------------
    def _pieces(self) -> Iterator[tuple[bytes, bool]]:
        """The data after the header in pieces that end at a record boundary; (piece, is_last)."""
        max_record = settings.FINALE_MAX_LINE_BYTES
        carry = self._buf[self._pos :]
        self._buf = b""
        while True:
            chunk = b"" if self._eof else self.body.read(self.piece_bytes)
            if not chunk:
                if carry.count(b'"') % 2:
                    raise TruncatedResponse(
                        f"The {self.what} ends inside a quoted field: the transfer was cut short",
                        excerpt=carry[-80:].decode("utf-8", "replace"),
                    )
                if carry:
                    yield carry, True
                return
            data = carry + chunk
            split = _last_record_end(data)
            if split < 0:
                carry = data
            else:
                yield data[: split + 1], False
                carry = data[split + 1 :]
            if len(carry) > max_record:
                raise MalformedData(
                    f"The {self.what} has a record longer than {max_record:,} bytes (FINALE_MAX_LINE_BYTES)"
                )

    def batches(
        self, header: Header, *, salt: bytes | None = None, unchanged=None
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of every data row after the header: text columns `c0`..`c{width-1}` (short rows
        padded), `_line` (the record number after the header, from 1), `_error` (a reason for rows that
        cannot be read, such as surplus cells with data; else null) and `_digest` (the digest of the row's
        line with `salt`; null without a salt, or where a field spans lines). Lines that `unchanged` (an
        UnchangedLines) recognises are passed over: they have no row. The rows read from pieces where most
        were passed over are put together into batches of at least `COALESCE_ROWS`."""
        line = 0
        pending: list[pa.RecordBatch] = []
        for piece, last in self._pieces():
            tail = None
            if last and not piece.endswith((b"\n", b"\r")):
                # The final record has no line end: parse it alone to see whether it was cut short.
                split = _last_record_end(piece)
                piece, tail = piece[: split + 1], piece[split + 1 :]
            if piece:
                records, batch = self._read_piece(
                    piece, header, first=line + 1, salt=salt, unchanged=unchanged
                )
                line += records
                self.rows_read = line
                pending.append(batch)
                if sum(b.num_rows for b in pending) >= COALESCE_ROWS:
                    yield pa.concat_batches(pending)
                    pending = []
            if tail is not None:
                cells = next(csv.reader(io.StringIO(_utf8(tail, what=self.what), newline="")), [])
                if getattr(self.body, "end_verified", True) is False or len(cells) < header.width:
                    raise TruncatedResponse(
                        f"The {self.what} ends in the middle of a row: the transfer was cut short",
                        excerpt=tail[-80:].decode("utf-8", "replace"),
                    )
                batch = self._parse_python(tail, header, numbers=line + 1)
                line += batch.num_rows
                self.rows_read = line
                pending.append(batch)
        if pending:
            yield pa.concat_batches(pending)

    def _read_piece(
        self, piece: bytes, header: Header, *, first: int, salt, unchanged
    ) -> tuple[int, pa.RecordBatch]:
        """Read one piece (whole records), passing over unchanged ones; returns (its records, the batch)."""
        records = _records(piece) if salt is not None else None
        if records is None:
            batch = self._parse(piece, header, numbers=first)
            return batch.num_rows, batch
        records, spans = records
        digests = line_digests(salt, records)
        if unchanged is not None:
            where = unchanged.locate(digests)
            same = pc.is_valid(where)
            if pc.any(same).as_py():
                read = pc.invert(same)
                wanted = pc.indices_nonzero(read)
                positions = wanted.to_pylist()
                rest = [records[i] for i in positions]
                numbers = pc.add(pc.cast(wanted, pa.int64()), first)
                if rest:
                    batch = self._parse(
                        b"\n".join(rest) + b"\n", header, numbers=numbers, digests=digests.filter(read)
                    )
                else:
                    batch = _batch(
                        header, [pa.array([], pa.string())] * header.width, numbers, [], digests[:0]
                    )
                kept_spans = None if spans is None else [spans[i] for i in positions]
                if _agrees(batch, len(rest), kept_spans):
                    passed = pc.indices_nonzero(same)
                    unchanged.record(where.filter(same), pc.add(pc.cast(passed, pa.int64()), first))
                    return len(records), batch
                # The parser saw other records than the quotes suggest (stray quotes): read the whole piece.
        batch = self._parse(piece, header, numbers=first, digests=digests)
        if not _agrees(batch, len(records), spans):
            batch = _batch(header, batch.columns[: header.width], batch[LINE], batch[ERROR], None)
        return batch.num_rows, batch

    def _parse(self, piece: bytes, header: Header, *, numbers, digests=None) -> pa.RecordBatch:
        """Parse whole records; `numbers` is the first record's number or every record's; `digests` every
        record's digest (dropped if the records turn out not to be the lines they were computed for)."""
        if not _valid_utf8(piece):
            # pyarrow would fail inside its own row handler (decoding the row it hands over) before it reports
            # the piece; Python's csv module says exactly what and where.
            return self._parse_python(piece, header, numbers=numbers, digests=digests)
        ragged = []

        def on_invalid(row):
            ragged.append(row)
            return "skip"

        try:
            table = pcsv.read_csv(
                io.BytesIO(piece),
                read_options=pcsv.ReadOptions(column_names=header.names, block_size=1 << 20),
                parse_options=pcsv.ParseOptions(
                    newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=on_invalid
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types=dict.fromkeys(header.names, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid:
            # Broken CSV: Python's csv module reads the piece again and says exactly what and where.
            return self._parse_python(piece, header, numbers=numbers, digests=digests)
        if ragged:
            # pyarrow cannot say where a ragged row sat; Python's csv module can (rare: exports are regular).
            return self._parse_python(piece, header, numbers=numbers, digests=digests)
        table = table.combine_chunks()
        columns = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in table.columns]
        return _batch(header, columns, numbers, None, digests)

    def _parse_python(self, piece: bytes, header: Header, *, numbers, digests=None) -> pa.RecordBatch:
        width = header.width
        rows, errors = [], []
        try:
            for cells in csv.reader(io.StringIO(_utf8(piece, what=self.what), newline="")):
                error = None
                if len(cells) < width:
                    # Exports may omit trailing empty cells.
                    cells = cells + [""] * (width - len(cells))
                elif len(cells) > width:
                    # Surplus cells that carry data mean a shifted row: its values cannot be trusted.
                    if any(c.strip() for c in cells[width:]):
                        error = f"has {len(cells)} cells, the header has {width}"
                    cells = cells[:width]
                rows.append(cells)
                errors.append(error)
        except csv.Error as exc:
            near = numbers if isinstance(numbers, int) else numbers[0].as_py()
            raise MalformedData(f"The {self.what} is not valid CSV near record {near}: {exc}") from None
        columns = [pa.array(col, pa.string()) for col in zip(*rows, strict=True)] if rows else []
        if not rows:
            columns = [pa.array([], pa.string()) for _ in range(width)]
        return _batch(header, columns, numbers, errors, digests)


def _last_record_end(data: bytes) -> int:
    """The position of the last line end in `data` that is outside quotes (the quote count before it is even),
    or -1."""
    quotes = data.count(b'"')
    split = data.rfind(b"\n")
    while split >= 0 and (quotes - data.count(b'"', split)) % 2:
        split = data.rfind(b"\n", 0, split)
    return split


# UTF-8 is checked this many bytes at a time (a decoded copy of a whole piece would raise the peak memory).
UTF8_CHECK_BYTES = 1 << 16


def _valid_utf8(piece: bytes) -> bool:
    """Whether `piece` is valid UTF-8: ASCII is, the rest is decoded a slice at a time and thrown away."""
    if piece.isascii():
        return True
    view, pos, size = memoryview(piece), 0, len(piece)
    try:
        while pos < size:
            end = pos + UTF8_CHECK_BYTES
            # Not final before the end: a character cut by the slice is decoded with the next one.
            _, used = codecs.utf_8_decode(view[pos:end], "strict", end >= size)
            if not used:
                return False
            pos += used
    except UnicodeDecodeError:
        return False
    return True


def _records(piece: bytes) -> tuple[list[bytes], list[bool] | None] | None:
    """The records of a piece of whole records, and whether each spans lines (a quoted field with a line
    break: its quotes do not pair up on its first line; None: none does). None when the quotes never pair up
    again."""
    lines = piece.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if not any(line.count(b'"') & 1 for line in lines):
        return lines, None
    records, spans, pending = [], [], None
    for line in lines:
        odd = line.count(b'"') & 1
        if pending is None:
            if odd:
                pending = [line]
            else:
                records.append(line)
                spans.append(False)
        else:
            pending.append(line)
            if odd:
                records.append(b"\n".join(pending))
                spans.append(True)
                pending = None
    return None if pending is not None else (records, spans)


def _agrees(batch: pa.RecordBatch, count: int, spans: list[bool] | None) -> bool:
    """Whether the parser found exactly the `count` records `spans` describes: a line break inside exactly
    those that span lines. (Stray quotes in unquoted fields can make the two disagree; then the digests are
    not the rows'.)"""
    if batch.num_rows != count:
        return False
    broken = None
    for column in batch.columns[: batch.num_columns - 3]:
        has = pc.match_substring(column, "\n")
        broken = has if broken is None else pc.or_(broken, has)
    if broken is None or spans is None or not any(spans):
        return broken is None or not pc.any(broken).as_py()
    return broken.to_pylist() == spans


def _batch(header: Header, cells: list[pa.Array], numbers, errors, digests) -> pa.RecordBatch:
    """A batch of cells plus `_line` (`numbers`: the first record's number, or every record's), `_error`
    (None: no errors) and `_digest` (None, or not one per row: no digests)."""
    n = len(cells[0]) if cells else 0
    if isinstance(numbers, int):
        numbers = pa.array(range(numbers, numbers + n), pa.int64())
    if digests is None or len(digests) != n:
        digests = pa.nulls(n, pa.int64())
    if errors is None:
        errors = pa.nulls(n, pa.string())
    elif not isinstance(errors, pa.Array):
        errors = pa.array(errors, pa.string())
    return pa.RecordBatch.from_arrays(
        [*cells, numbers, errors, digests], names=[*header.names, LINE, ERROR, DIGEST]
    )
