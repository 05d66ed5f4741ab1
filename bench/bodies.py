"""Inventory report bodies for the benchmark, generated once and then served as bytes from a file.

The rows are the simulator's own (`Dataset.inventory_rows`), written exactly as the simulator writes them
(`csv_chunks`: BOM, preamble, header, CRLF rows, minimal quoting), so a body here is byte-for-byte what
`finalesim` would send. A new version (`mutate`) applies one more of the simulator's mutation events: only the
rows that event changes are generated and rendered again, and the whole body is written to a new file that
replaces the served one atomically (a request already being served keeps reading the old file).

Stdlib and the simulator's pure data module only: this runs in the benchmark's own process and in its loop
worker, never inside a timed sync.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import timedelta
from pathlib import Path

from finalesync.simulator.data import (
    ANCHOR,
    INVENTORY_HEADER,
    Dataset,
    MutationEvent,
    _hits,  # the simulator's own rule for which rows an event changes (its server uses it the same way)
    fraction_threshold,
    resolve_counts,
    stream_base,
)

ACCOUNT = "bench"
# What the simulator puts before the header of the inventory report (finalesync/simulator/server.py).
PREAMBLE = [["Inventory report"], []]


def render(rows) -> list[bytes]:
    """Each row as its CSV line (CRLF, minimal quoting, UTF-8), as csv_chunks writes it."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    out = []
    for row in rows:
        writer.writerow(row)
        out.append(buf.getvalue().encode("utf-8"))
        buf.seek(0)
        buf.truncate()
    return out


def head() -> bytes:
    """BOM, preamble and header: everything before the first data row."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows(PREAMBLE)
    writer.writerow(INVENTORY_HEADER)
    return buf.getvalue().encode("utf-8")


def header_line() -> bytes:
    return render([INVENTORY_HEADER])[0]


class InventoryBodies:
    """The inventory report of `rows` rows (seed `seed`) and its mutated versions.

    `events` mutation events (each changing about `ratio` of the rows, as `POST /_sim/mutate` would) are
    applied at construction, so a second process can rebuild the same version without talking to the first.
    """

    def __init__(self, rows: int, seed: int, *, events: int = 0, ratio: float = 0.01):
        self.rows = rows
        self.seed = seed
        self.ratio = ratio
        self.dataset = Dataset(seed, ACCOUNT, resolve_counts(rows, None))
        self.events: tuple[MutationEvent, ...] = tuple(self._event(v) for v in range(1, events + 1))
        self.lines = render(self.dataset.inventory_rows(self.events))
        self._first = (self.events, list(self.lines))

    def reset(self) -> None:
        """Back to the version this object was built at (for the next database)."""
        self.events, lines = self._first
        self.lines = list(lines)

    def _event(self, version: int) -> MutationEvent:
        # As FinaleSimulator.mutate() builds it; `at` only dates order edits, so a fixed one keeps bodies stable.
        salt = stream_base(self.seed, f"mutate:inventory:{version}")
        return MutationEvent(
            version, salt, fraction_threshold(self.ratio), ANCHOR + timedelta(minutes=version)
        )

    @property
    def version(self) -> int:
        return len(self.events)

    def changed_by(self, version: int) -> list[int]:
        """Indices of the rows (SKU-<index>) that mutation `version` changes (published or not): the
        simulator's own record of a mutation."""
        event = self._event(version)
        return [i for i in range(self.rows) if _hits(i, (event,))]

    def mutate(self) -> list[int]:
        """Publish the next version; returns the indices of the rows it changed."""
        event = self._event(self.version + 1)
        changed = self.changed_by(event.version)
        self.events = (*self.events, event)
        wanted = set(changed)
        fresh = render(self.dataset.inventory_rows(self.events, keep=wanted.__contains__))
        for i, line in zip(changed, fresh, strict=True):
            self.lines[i] = line
        return changed

    def body(self) -> bytes:
        return head() + b"".join(self.lines)

    def write(self, path: Path) -> int:
        """Write the full report body to `path` atomically; returns its size in bytes."""
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as out:
            out.write(head())
            out.writelines(self.lines)
        size = tmp.stat().st_size
        os.replace(tmp, path)
        return size

    def write_plain(self, path: Path) -> int:
        """The same rows after the header only (no BOM, no preamble): what the `\\copy` floor loads."""
        with open(path, "wb") as out:
            out.write(header_line())
            out.writelines(self.lines)
        return path.stat().st_size
