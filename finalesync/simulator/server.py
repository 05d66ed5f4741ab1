"""The Finale simulator: a threaded loopback HTTP server that speaks the surface in docs finale-api.md.

It serves generated, deterministic data (see `data.py`) for the three report exports and the order collection,
requires the same HTTP Basic credentials Finale does, and can be told to misbehave per data type from Python
(`set_fault(TYPE, KIND)`, `clear_faults()`) or its control endpoints (`POST /_sim/faults {"inventory":
"drip"}`; `{"inventory": null}` clears one type, `{}` clears all). Faults (FAULT_KINDS):

- `http_401` ... `http_504`: that status with a short body (429 with `Retry-After: 120`; 502/504 as HTML).
- `slow`: waits `slow_seconds` before answering (trips a client's read timeout).
- `truncated`: a chunked body, properly ended, whose text stops inside a row.
- `reset`: a chunked body cut inside a row, then the connection is reset (TCP RST).
- `empty`, `header_only`, `html` (a login page with status 200), `garbage` (binary junk).
- `missing_column`: the key column (orders: `orderId`) is left out.
- `drop_60`: only about 40% of the rows.
- `renamed_stock_column` (inventory only): the stock header reads `Stock (all locations)`.
- `blank_stock_column` (inventory only): the stock column is there but empty in every row.
- `cut_close_delimited`: complete lines up to 75% of the rows, then the connection closes; no
  Content-Length and no chunking, so nothing tells the client the body was cut. For purchase_orders a valid
  JSON document with the first 75% of the orders, framed the same way.
- `unstorable_cells`: values a database column cannot hold, among good rows (`unstorable_keys()` lists the
  keys of the rows they are in). Inventory: `١٢٣` as a stock quantity, `99999999999999.99999` as a unit
  cost, a 41-digit stock quantity. purchase_orders: a 126-character `statusId`, an `orderDate` that is no
  date. vendors and boms: a NUL byte in a text cell (Notes, Component Note) and an extra row whose key is
  longer than 255 characters.
- `gzip_bomb`: `Content-Encoding: gzip`, about 1 MB that inflates to 1 GiB on a single line (after the CSV
  header; for orders inside the first JSON string).
- `drip`: a chunked 200 that sends a few bytes every DRIP_INTERVAL seconds, for up to DRIP_MAX_SECONDS:
  each read succeeds, so only a total deadline stops it.
- `nan_json` (purchase_orders only): one order line's `quantity` is the bare JSON constant `NaN`.
- `unequal_arrays` (purchase_orders only): one field's array is one element short.

Reports can also be served with other header spellings from finale-api.md (`spellings="alt"`,
`finalesim --spellings alt`, `POST /_sim/spellings {"spellings": "alt"}`), to prove the alias mapping.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import itertools
import json
import logging
import math
import random
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from .data import (
    ANCHOR,
    CSV_TYPES,
    DATA_TYPES,
    HEADERS,
    JUNK_VENDOR_ROWS,
    ORDER_TYPES,
    REPORT_IDS,
    REPORT_TITLES,
    SPELLINGS,
    Dataset,
    MutationEvent,
    _hits,
    csv_chunks,
    fraction_threshold,
    gzip_bomb,
    orders_json_chunks,
    resolve_counts,
    stream_base,
)

logger = logging.getLogger("finalesync.simulator")

HTTP_FAULTS = {
    "http_401": 401,
    "http_403": 403,
    "http_404": 404,
    "http_429": 429,
    "http_500": 500,
    "http_502": 502,
    "http_503": 503,
    "http_504": 504,
}
FAULT_KINDS = (
    *HTTP_FAULTS,
    "slow",
    "reset",
    "truncated",
    "empty",
    "header_only",
    "html",
    "missing_column",
    "garbage",
    "drop_60",
    "unequal_arrays",
    "renamed_stock_column",
    "blank_stock_column",
    "cut_close_delimited",
    "unstorable_cells",
    "gzip_bomb",
    "drip",
    "nan_json",
)
# Faults that only make sense for some types; set on another type they are refused, not emulated.
FAULT_DATA_TYPES = {
    "unequal_arrays": ("purchase_orders",),
    "nan_json": ("purchase_orders",),
    "renamed_stock_column": ("inventory",),
    "blank_stock_column": ("inventory",),
}
ORDERS_ONLY_FAULTS = frozenset(k for k, v in FAULT_DATA_TYPES.items() if v == ("purchase_orders",))
INVENTORY_ONLY_FAULTS = frozenset(k for k, v in FAULT_DATA_TYPES.items() if v == ("inventory",))
RENAMED_STOCK_HEADER = "Stock (all locations)"
STOCK_COLUMN = 4  # "Units in stock" in the inventory header (both spellings)
# cut_close_delimited keeps this share of the rows.
CLOSE_DELIMITED_KEEP = 0.75
# drip: DRIP_BYTES every DRIP_INTERVAL seconds (below any sane read timeout), for at most DRIP_MAX_SECONDS.
DRIP_INTERVAL = 0.5
DRIP_BYTES = 16
DRIP_MAX_SECONDS = 3600
# unstorable_cells: values no column of ours can hold.
ARABIC_INDIC_QUANTITY = "\u0661\u0662\u0663"  # ١٢٣
HUGE_COST = "99999999999999.99999"
LONG_QUANTITY = "".join(str((k + 1) % 10) for k in range(41))
LONG_STATUS = "ORDER_" + "X" * 120  # 126 characters
BAD_ORDER_DATE = "2026-02-30T25:61:00"
LONG_KEY_LENGTH = 300
RETRY_AFTER_SECONDS = 120
# reset: the pause between the partial body and the RST, so the client has read the status line first.
RESET_AFTER_SECONDS = 0.2
# drop_60 keeps this share of the rows.
DROP_60_KEEP = 0.4
# truncated/reset cut the body at about half the rows, but never later than this row, so huge data sets
# fail quickly instead of streaming hundreds of megabytes first.
MAX_CUT_ROW = 2000
MAX_LAST_UPDATED_SPAN = timedelta(days=30)
WRITE_CHUNK = 64 * 1024

_REPORT_TYPES = {v: k for k, v in REPORT_IDS.items()}
_CSV_PREAMBLE = {"inventory": [["Inventory report"], []], "vendors": [], "boms": [["Bill of materials"]]}
_KEY_FIELD = {
    "inventory": "Product ID",
    "vendors": "Name",
    "boms": "Product ID",
    "purchase_orders": "orderId",
}
_REPORT_DATA_PARAM = {"inventory": "product", "vendors": "partygroup", "boms": "productassoc"}
_HTTP_FAULT_BODIES = {
    401: "Unauthorized: the API key or secret is not valid.",
    403: "Forbidden: this user does not have permission for the requested resource.",
    404: "Not found.",
    429: "Too many requests. Please slow down.",
    500: "Internal server error.",
    503: "Service temporarily unavailable. Finale is undergoing maintenance.",
}
_LOGIN_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Finale Inventory - Sign in</title>
<link rel="stylesheet" href="/{account}/app/css/login.css"></head>
<body><div class="login-box"><h1>Sign in to Finale Inventory</h1>
<form method="post" action="/{account}/auth" autocomplete="on">
<label>Username <input type="text" name="username" autofocus></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Sign in</button>
<a href="/{account}/app/forgot">Forgot your password?</a>
</form></div></body></html>
"""


def validate_fault(data_type: str, kind: str | None) -> None:
    """Raise ValueError with a readable message unless `kind` (None = no fault) is valid for `data_type`."""
    if data_type not in DATA_TYPES:
        raise ValueError(f"unknown data type {data_type!r}; valid types: {', '.join(DATA_TYPES)}")
    if kind is None:
        return
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; valid kinds: {', '.join(FAULT_KINDS)}")
    allowed = FAULT_DATA_TYPES.get(kind)
    if allowed is not None and data_type not in allowed:
        what = " (a JSON collection)" if allowed == ("purchase_orders",) else ""
        raise ValueError(f"fault {kind!r} applies only to {', '.join(allowed)}{what}, not {data_type!r}")


def _parse_at(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    dt = datetime.fromisoformat(str(value))
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


class FinaleSimulator:
    """A fake Finale Inventory account served over HTTP on 127.0.0.1, for tests, benchmarks and the demo.

    `rows` is the number of inventory rows; other sizes derive from it unless `counts` overrides them
    (keys: inventory, vendors, boms (BOM parents), purchase_orders). The same `seed` and sizes give
    byte-identical bodies. Usable as a context manager (starts on enter, stops on exit).
    """

    def __init__(
        self,
        port: int = 0,
        rows: int = 200,
        seed: int = 1,
        account: str = "demo",
        api_key: str = "sim-key",
        api_secret: str = "sim-secret-value",
        slow_seconds: float = 5.0,
        counts: dict[str, int] | None = None,
        spellings: str = "standard",
    ):
        self.port = port
        self.seed = seed
        self.account = account
        self.api_key = api_key
        self.api_secret = api_secret
        self.slow_seconds = slow_seconds
        self.dataset = Dataset(seed, account, resolve_counts(rows, counts))
        # Warm the shared caches before any request thread can race to build them.
        self.dataset.vendor_names()
        self._lock = threading.Lock()
        self._faults: dict[str, str | None] = dict.fromkeys(DATA_TYPES)
        self._events: dict[str, tuple[MutationEvent, ...]] = {t: () for t in DATA_TYPES}
        self._served: dict[str, int] = dict.fromkeys(DATA_TYPES, 0)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._auth = "Basic " + base64.b64encode(f"{api_key}:{api_secret}".encode()).decode("ascii")
        self.spellings = "standard"
        self.set_spellings(spellings)

    # --- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> FinaleSimulator:
        """Bind 127.0.0.1:`port` (0 = any free port) and serve in a background daemon thread."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._stopping.clear()
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.sim = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="finale-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; in-flight streams are abandoned."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        stopper = threading.Thread(target=server.shutdown, name="finale-simulator-stop", daemon=True)
        stopper.start()
        # serve_forever() only notices shutdown between select() polls; a throwaway connection wakes it now
        # rather than after a poll interval (which adds up over a test suite's worth of simulators).
        while stopper.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection(server.server_address[:2], timeout=1).close()
            stopper.join(0.01)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> FinaleSimulator:
        return self.start() if self._server is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- addresses ----------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Return `http://127.0.0.1:PORT` of the running server."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def report_url(self, data_type: str) -> str:
        """Return the full pivotTableStream export URL of a report type (inventory, vendors or boms)."""
        if data_type not in REPORT_IDS:
            raise ValueError(f"no report for {data_type!r}; reports: {', '.join(REPORT_IDS)}")
        filters = base64.b64encode(json.dumps([["productStatus", ["PRODUCT_ACTIVE"], None]]).encode())
        dims = base64.urlsafe_b64encode(f"{data_type}:{self.seed}".encode()).decode().rstrip("=")
        query = urlencode(
            {
                "format": "csv",
                "data": _REPORT_DATA_PARAM[data_type],
                "rowDimensions": "~" + dims,
                "filters": filters.decode("ascii"),
                "reportTitle": REPORT_TITLES[data_type],
            }
        )
        path = f"/{self.account}/doc/report/pivotTableStream/{REPORT_IDS[data_type]}/Report.csv"
        return f"{self.base_url}{path}?{query}"

    @property
    def orders_url(self) -> str:
        """Return the URL of the order collection."""
        return f"{self.base_url}/{self.account}/api/order/"

    # --- faults and data versions -------------------------------------------------------------------------
    def set_fault(self, data_type: str, kind: str | None) -> None:
        """Make requests for `data_type` misbehave as `kind` (one of FAULT_KINDS); None clears it."""
        validate_fault(data_type, kind)
        with self._lock:
            self._faults[data_type] = kind

    def set_spellings(self, spellings: str) -> None:
        """Serve the reports' headers with the `standard` spellings or the `alt` ones (see data.HEADERS)."""
        if spellings not in SPELLINGS:
            raise ValueError(f"unknown spellings {spellings!r}; valid: {', '.join(SPELLINGS)}")
        with self._lock:
            self.spellings = spellings

    def header(self, data_type: str) -> list[str]:
        """Return the header row a fault-free report of `data_type` is served with."""
        return list(HEADERS[self.spellings][data_type])

    def unstorable_keys(self, data_type: str) -> list:
        """Return the keys of the rows the `unstorable_cells` fault puts bad values in: SKUs, vendor names,
        (parent, component) pairs or order ids. For vendors and boms the second key is the extra row's
        overlong one (it has no live row)."""
        ds = self.dataset
        if data_type == "inventory":
            return [ds.sku(i) for i in _unstorable_inventory_rows(ds.counts["inventory"])]
        if data_type == "purchase_orders":
            return [ds.order_head(i)[0] for i in _unstorable_orders(ds)]
        if data_type == "vendors":
            return [ds.vendor_names()[ds.counts["vendors"] // 2], _long_key("Vendor")]
        if data_type == "boms":
            parent, component = _bom_line_key(ds, ds.bom_lines() // 2)
            return [(parent, component), (parent, _long_key("SKU-"))]
        raise ValueError(f"unknown data type {data_type!r}")

    def clear_faults(self, data_type: str | None = None) -> None:
        """Clear the fault of one data type, or of all when `data_type` is None."""
        if data_type is not None:
            validate_fault(data_type, None)
        with self._lock:
            for t in DATA_TYPES if data_type is None else (data_type,):
                self._faults[t] = None

    def mutate(self, data_type: str, ratio: float = 0.01, at: datetime | str | None = None) -> int:
        """Publish a new version of `data_type` in which about `ratio` of the rows have changed values (keys
        stay). Changed orders get `lastUpdatedDate` = `at` (default: now, UTC, never before the base data).
        Returns the new version number."""
        validate_fault(data_type, None)
        if not 0 < ratio <= 1:
            raise ValueError("ratio must be in (0, 1]")
        at = _parse_at(at)
        with self._lock:
            events = self._events[data_type]
            version = len(events) + 1
            if at is None:
                now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
                floor = events[-1].at if events else ANCHOR
                at = max(now, floor + timedelta(seconds=1))
            salt = stream_base(self.seed, f"mutate:{data_type}:{version}")
            self._events[data_type] = (*events, MutationEvent(version, salt, fraction_threshold(ratio), at))
        return version

    def changed_rows(self, data_type: str, version: int | None = None) -> list[int]:
        """Return the indices of the rows (inventory: SKU-<index>) that mutation `version` (default: the
        latest) changed: the simulator's own record, to check what a sync says it changed."""
        validate_fault(data_type, None)
        with self._lock:
            events = self._events[data_type]
        if not events:
            return []
        event = events[(version or len(events)) - 1]
        size = self.dataset.counts["boms" if data_type == "boms" else data_type]
        return [i for i in range(size) if _hits(i, (event,))]

    def reset(self) -> None:
        """Clear all faults and mutations (back to version 0 of every data type)."""
        with self._lock:
            self._faults = dict.fromkeys(DATA_TYPES)
            self._events = {t: () for t in DATA_TYPES}

    @property
    def faults(self) -> dict[str, str | None]:
        """Return the current fault per data type (None = none)."""
        with self._lock:
            return dict(self._faults)

    @property
    def requests_served(self) -> dict[str, int]:
        """Return how many requests reached each data type's URL (any outcome, auth failures included)."""
        with self._lock:
            return dict(self._served)

    @property
    def counts(self) -> dict[str, int]:
        """Return the configured sizes per data type (boms = BOM parents)."""
        return dict(self.dataset.counts)

    def data_rows(self, data_type: str) -> int:
        """Return how many data rows (CSV) or orders (JSON) a fault-free response for `data_type` carries."""
        counts = self.dataset.counts
        if data_type == "vendors":
            return counts["vendors"] + JUNK_VENDOR_ROWS
        if data_type == "boms":
            return self.dataset.bom_lines()
        return counts[data_type]

    def state(self) -> dict:
        """Return the JSON-ready state shown at GET /_sim/state."""
        with self._lock:
            faults = dict(self._faults)
            versions = {t: len(e) for t, e in self._events.items()}
            served = dict(self._served)
        return {
            "account": self.account,
            "seed": self.seed,
            "spellings": self.spellings,
            "faults": faults,
            "counts": self.counts,
            "bom_lines": self.dataset.bom_lines(),
            "junk_rows": JUNK_VENDOR_ROWS,
            "versions": versions,
            "requests_served": served,
        }

    # --- used by the request handler ----------------------------------------------------------------------
    def _count_request(self, data_type: str) -> None:
        with self._lock:
            self._served[data_type] += 1

    def _snapshot(self, data_type: str) -> tuple[str | None, tuple[MutationEvent, ...]]:
        # One consistent view per request, so a mutate() mid-stream cannot mix two versions in one body.
        with self._lock:
            return self._faults[data_type], self._events[data_type]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    sim: FinaleSimulator

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up (a test's client refusing a hostile body, say) is normal here, not a
        # traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), which can stall on reverse DNS; loopback needs no name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _StreamAborted(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FinaleSim/1.0"
    # Idle keep-alive connections give up their thread eventually.
    timeout = 120
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    # --- dispatch -----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/_sim/"):
            self._control(url.path, None)
        else:
            self._finale(url)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        if url.path.startswith("/_sim/"):
            self._control(url.path, body)
        else:
            self._send_text(405, "Method not allowed.")

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= 1 << 20:
            self.close_connection = True
            self._send_json(400, {"error": "bad or too large Content-Length"})
            return None
        return self.rfile.read(length) if length else b""

    # --- simple responses ---------------------------------------------------------------------------------
    def _send_bytes(self, status: int, content_type: str, body: bytes, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if body:
                self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _send_text(self, status: int, text: str, headers: dict | None = None) -> None:
        self._send_bytes(status, "text/plain; charset=utf-8", text.encode(), headers)

    def _send_json(self, status: int, obj) -> None:
        self._send_bytes(status, "application/json", json.dumps(obj).encode())

    # --- control endpoints --------------------------------------------------------------------------------
    def _control(self, path: str, body: bytes | None) -> None:
        sim = self.server.sim
        if self.client_address[0] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            self._send_json(403, {"error": "control endpoints are loopback only"})
            return
        if body is None:
            if path == "/_sim/state":
                self._send_json(200, sim.state())
            else:
                self._send_json(404, {"error": f"unknown control endpoint GET {path}"})
            return
        try:
            payload = json.loads(body or b"{}")
        except ValueError as exc:
            self._send_json(400, {"error": f"body is not JSON: {exc}"})
            return
        try:
            if path == "/_sim/faults":
                if not isinstance(payload, dict):
                    raise ValueError(
                        'body must be a JSON object like {"inventory": "http_500", "boms": null}'
                    )
                if not payload:
                    sim.clear_faults()  # `{}`: no fault anywhere
                for data_type, kind in payload.items():
                    validate_fault(data_type, kind)
                # Validated as a whole first so a bad entry changes nothing.
                for data_type, kind in payload.items():
                    sim.set_fault(data_type, kind)
                self._send_json(200, sim.state())
            elif path == "/_sim/mutate":
                if not isinstance(payload, dict) or "data_type" not in payload:
                    raise ValueError(
                        'body must be a JSON object like {"data_type": "inventory", "ratio": 0.01}'
                    )
                ratio = payload.get("ratio", 0.01)
                if not isinstance(ratio, int | float) or isinstance(ratio, bool):
                    raise ValueError("ratio must be a number")
                version = sim.mutate(payload["data_type"], float(ratio), payload.get("at"))
                self._send_json(200, {"data_type": payload["data_type"], "version": version, **sim.state()})
            elif path == "/_sim/spellings":
                if not isinstance(payload, dict) or "spellings" not in payload:
                    raise ValueError('body must be a JSON object like {"spellings": "alt"}')
                sim.set_spellings(payload["spellings"])
                self._send_json(200, sim.state())
            elif path == "/_sim/reset":
                sim.reset()
                self._send_json(200, sim.state())
            else:
                self._send_json(404, {"error": f"unknown control endpoint POST {path}"})
        except (ValueError, TypeError) as exc:
            self._send_json(400, {"error": str(exc)})

    # --- Finale surface -----------------------------------------------------------------------------------
    def _finale(self, url) -> None:
        sim = self.server.sim
        parts = [p for p in url.path.split("/") if p]
        if len(parts) == 6 and parts[1:4] == ["doc", "report", "pivotTableStream"]:
            data_type = _REPORT_TYPES.get(parts[4])
        elif len(parts) == 3 and parts[1:] == ["api", "order"]:
            data_type = "purchase_orders"
        else:
            self._send_text(404, "Not found.")
            return
        if data_type is not None:
            sim._count_request(data_type)
        if not hmac.compare_digest(self.headers.get("Authorization", "").encode(), sim._auth.encode()):
            self._send_text(401, "Unauthorized: the API key or secret is not valid.")
            return
        if parts[0] != sim.account or data_type is None:
            self._send_text(404, "Not found.")
            return
        fault, events = sim._snapshot(data_type)
        is_csv = data_type in CSV_TYPES
        content_type = "text/csv; charset=utf-8" if is_csv else "application/json"

        if fault in HTTP_FAULTS:
            self._send_http_fault(HTTP_FAULTS[fault])
            return
        if fault == "slow":
            # Waiting on the stop event lets stop() end a slow request instead of hanging for slow_seconds.
            if sim._stopping.wait(sim.slow_seconds):
                self.close_connection = True
                return
        elif fault == "empty":
            self._send_bytes(200, content_type, b"")
            return
        elif fault == "html":
            page = _LOGIN_PAGE.format(account=sim.account).encode()
            self._send_bytes(200, "text/html; charset=utf-8", page)
            return
        elif fault == "garbage":
            rng = random.Random(stream_base(sim.seed, "garbage:" + data_type))
            # Start with a NUL and an invalid UTF-8 sequence so even a short peek sees binary junk.
            self._send_bytes(200, content_type, b"\x00\xc3\x28\xff" + rng.randbytes(64 * 1024 - 4))
            return
        elif fault == "gzip_bomb":
            if is_csv:
                prefix = ("\ufeff" + ",".join(sim.header(data_type)) + "\r\n").encode()
            else:
                prefix = b'{"orderId": ["'
            self._send_blob(200, content_type, gzip_bomb(prefix), {"Content-Encoding": "gzip"})
            return

        if is_csv:
            pieces = self._csv_pieces(data_type, events, fault)
        else:
            window = self._order_window(url.query)
            if window is False:
                return
            pieces = self._order_pieces(events, fault, window)
        if fault == "cut_close_delimited":
            self._stream_close_delimited(content_type, pieces)
        elif fault == "drip":
            self._drip(content_type, pieces)
        else:
            self._stream(content_type, pieces, terminate=fault != "reset")

    def _send_http_fault(self, status: int) -> None:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 429 else None
        if status in (502, 504):
            # Gateway errors come from the load balancer in front of Finale, as an HTML page.
            title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
            page = f"<html><head><title>{title}</title></head>\n<body><h1>{title}</h1></body></html>\n"
            self._send_bytes(status, "text/html", page.encode(), headers)
        else:
            self._send_text(status, _HTTP_FAULT_BODIES[status], headers)

    def _csv_pieces(self, data_type: str, events, fault: str | None) -> Iterator[str]:
        sim = self.server.sim
        ds = sim.dataset
        keep = ds.keep_predicate(data_type, DROP_60_KEEP) if fault == "drop_60" else None
        generate = {"inventory": ds.inventory_rows, "vendors": ds.vendor_rows, "boms": ds.bom_rows}[data_type]
        rows: Iterable[list[str]] = () if fault == "header_only" else generate(events, keep)
        cut_at = min(sim.data_rows(data_type) // 2, MAX_CUT_ROW) if fault in ("truncated", "reset") else None
        header = sim.header(data_type)
        if fault == "renamed_stock_column":
            header[STOCK_COLUMN] = RENAMED_STOCK_HEADER
        elif fault == "blank_stock_column":
            rows = _blank_column(rows, STOCK_COLUMN)
        elif fault == "unstorable_cells":
            rows = _unstorable_rows(ds, data_type, rows)
        elif fault == "cut_close_delimited":
            rows = itertools.islice(rows, math.ceil(sim.data_rows(data_type) * CLOSE_DELIMITED_KEEP))
        return csv_chunks(
            _CSV_PREAMBLE[data_type],
            header,
            rows,
            drop_first_column=fault == "missing_column",
            cut_at=cut_at,
        )

    def _order_window(self, query: str) -> tuple[datetime | None, datetime | None] | None | bool:
        """Parse `?filter=`; return the lastUpdatedDate window, None for no window, False after a 400."""
        raw = parse_qs(query).get("filter")
        if not raw:
            return None
        try:
            text = raw[0].strip()
            spec = json.loads(
                base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))
            )
            if not isinstance(spec, dict):
                raise ValueError("the filter must be a JSON object")
        except (ValueError, binascii.Error) as exc:
            self._send_text(400, f"Invalid filter: {exc}")
            return False
        # orderTypeId (and any other key) is deliberately ignored: Finale's own type filter is unreliable, so
        # the simulator returns every type and the client must filter on its side (finale-api.md).
        bounds = spec.get("lastUpdatedDate")
        if bounds is None:
            return None
        try:
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise ValueError("lastUpdatedDate must be a [low, high] range")
            low, high = (_parse_at(b) for b in bounds)
        except (ValueError, TypeError) as exc:
            self._send_text(400, f"Invalid filter: {exc}")
            return False
        # Finale documents a 30-day maximum; whether an open end counts is unknown, so only closed ranges
        # are checked.
        if low is not None and high is not None and high - low > MAX_LAST_UPDATED_SPAN:
            self._send_text(400, "Invalid filter: the lastUpdatedDate range may span at most 30 days.")
            return False
        return low, high

    def _order_pieces(self, events, fault: str | None, window) -> Iterator[str]:
        sim = self.server.sim
        ds = sim.dataset
        keep = ds.keep_predicate("purchase_orders", DROP_60_KEEP) if fault == "drop_60" else None

        count = ds.counts["purchase_orders"]
        if fault == "cut_close_delimited":
            count = math.ceil(count * CLOSE_DELIMITED_KEEP)
        overrides: dict[int, dict[str, object]] = {}
        if fault == "unstorable_cells":
            status_at, date_at = _unstorable_orders(ds)
            overrides = {status_at: {"statusId": LONG_STATUS}, date_at: {"orderDate": BAD_ORDER_DATE}}
        elif fault == "nan_json":
            at = _purchase_order_at(ds, ds.counts["purchase_orders"] // 2)
            items = ds.order_items(at, events)
            items[0]["quantity"] = float("nan")
            overrides = {at: {"orderItemList": items}}

        def indices() -> Iterator[int]:
            for i in range(count):
                if keep is not None and not keep(i):
                    continue
                if window is not None:
                    updated = datetime.fromisoformat(ds.order_head(i, events)[6])
                    if (window[0] is not None and updated < window[0]) or (
                        window[1] is not None and updated > window[1]
                    ):
                        continue
                yield i

        return orders_json_chunks(
            ds,
            indices(),
            events,
            drop_key=_KEY_FIELD["purchase_orders"] if fault == "missing_column" else None,
            short_field="statusId" if fault == "unequal_arrays" else None,
            cut=fault in ("truncated", "reset"),
            empty=fault == "header_only",
            overrides=overrides,
        )

    def _stream(self, content_type: str, pieces: Iterable[str], *, terminate: bool) -> None:
        """Send a 200 with a chunked body in ~64 KiB chunks; without `terminate`, drop the connection
        after the last piece instead of sending the final zero-length chunk."""
        stopping = self.server.sim._stopping
        try:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            buf: list[bytes] = []
            size = 0
            for piece in pieces:
                data = piece.encode("utf-8")
                buf.append(data)
                size += len(data)
                if size >= WRITE_CHUNK:
                    self._write_chunk(b"".join(buf))
                    buf.clear()
                    size = 0
                    if stopping.is_set():
                        raise _StreamAborted
            if size:
                self._write_chunk(b"".join(buf))
            if terminate:
                self.wfile.write(b"0\r\n\r\n")
                return
        except (OSError, _StreamAborted) as exc:
            # The client went away (or the simulator is stopping): nothing more can be sent.
            logger.debug("stream ended early: %r", exc)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        self.close_connection = True
        if not terminate and not stopping.is_set():
            # A real reset (RST) a moment after a partial chunked body: the client has the status and some
            # data, then "connection reset by peer". Linger 0 makes close() send the RST; closing here, before
            # socketserver's own shutdown(SHUT_WR), keeps a FIN from going out first.
            stopping.wait(RESET_AFTER_SECONDS)
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            return
        # The client went away or the simulator is stopping: a clean FIN.
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _send_blob(self, status: int, content_type: str, body: bytes, headers: dict) -> None:
        """Send a large prepared body with its Content-Length, in pieces, giving up when stopping."""
        stopping = self.server.sim._stopping
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            view = memoryview(body)
            for start in range(0, len(body), WRITE_CHUNK):
                if stopping.is_set():
                    raise _StreamAborted
                self.wfile.write(view[start : start + WRITE_CHUNK])
        except (OSError, _StreamAborted) as exc:
            logger.debug("blob ended early: %r", exc)
            self.close_connection = True

    def _stream_close_delimited(self, content_type: str, pieces: Iterable[str]) -> None:
        """Send a 200 with neither Content-Length nor chunking: the body ends when the connection closes,
        which is all a client sees of a transfer cut at a line break."""
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Connection", "close")
            self.end_headers()
            for piece in pieces:
                self.wfile.write(piece.encode("utf-8"))
            self.wfile.flush()
        except OSError as exc:
            logger.debug("close-delimited stream ended early: %r", exc)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _drip(self, content_type: str, pieces: Iterable[str]) -> None:
        """A chunked 200 that trickles the body DRIP_BYTES at a time: every read gets something well within
        any read timeout, so only a total deadline ends it."""
        stopping = self.server.sim._stopping
        self.close_connection = True
        until = time.monotonic() + DRIP_MAX_SECONDS
        try:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in pieces:
                data = piece.encode("utf-8")
                for start in range(0, len(data), DRIP_BYTES):
                    self._write_chunk(data[start : start + DRIP_BYTES])
                    self.wfile.flush()
                    if stopping.wait(DRIP_INTERVAL) or time.monotonic() > until:
                        raise _StreamAborted
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, _StreamAborted) as exc:
            logger.debug("drip ended: %r", exc)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()


# --- row transforms for the data faults ---------------------------------------------------------------------
def _blank_column(rows: Iterable[list[str]], column: int) -> Iterator[list[str]]:
    for row in rows:
        row = list(row)
        row[column] = ""
        yield row


def _long_key(prefix: str) -> str:
    return prefix + "9" * (LONG_KEY_LENGTH - len(prefix))


def _unstorable_inventory_rows(n: int) -> list[int]:
    return [n // 4, n // 2, (3 * n) // 4]


def _purchase_order_at(ds: Dataset, start: int) -> int:
    """The first PURCHASE_ORDER at or after index `start` (the types the sync keeps), else `start`."""
    for i in range(start, ds.counts["purchase_orders"]):
        if ds.order_head(i)[2] == ORDER_TYPES[0]:
            return i
    return start


def _unstorable_orders(ds: Dataset) -> tuple[int, int]:
    n = ds.counts["purchase_orders"]
    status_at = _purchase_order_at(ds, n // 3)
    date_at = _purchase_order_at(ds, max((2 * n) // 3, status_at + 1))
    return status_at, date_at


def _bom_line_key(ds: Dataset, line: int) -> tuple[str, str]:
    parent = ""
    for k, row in enumerate(ds.bom_rows()):
        parent = row[0] or parent
        if k == line:
            return parent, row[4]
    raise ValueError("no such BOM line")


def _unstorable_rows(ds: Dataset, data_type: str, rows: Iterable[list[str]]) -> Iterator[list[str]]:
    """Yield `rows` with the unstorable_cells values put in (see the module docstring)."""
    if data_type == "inventory":
        at = _unstorable_inventory_rows(ds.counts["inventory"])
        cells = {at[0]: (STOCK_COLUMN, ARABIC_INDIC_QUANTITY), at[1]: (13, HUGE_COST)}
        cells[at[2]] = (STOCK_COLUMN, LONG_QUANTITY)
        for i, row in enumerate(rows):
            if i in cells:
                row = list(row)
                column, value = cells[i]
                row[column] = value
            yield row
        return
    if data_type == "vendors":
        target = ds.vendor_names()[ds.counts["vendors"] // 2]
        for row in rows:
            if row[0] == target:
                row = list(row)
                row[11] = "Net 30\x00 imported"
                yield row
                yield [_long_key("Vendor"), "orders@long.example.com"] + [""] * (len(row) - 2)
            else:
                yield row
        return
    # boms: the extra line has blank parent cells, so it belongs to the same parent as the NUL line.
    target = ds.bom_lines() // 2
    for k, row in enumerate(rows):
        if k == target:
            row = list(row)
            row[7] = "Cut\x00 to length"
            yield row
            yield ["", "", "", "1", _long_key("SKU-"), "Overlong component id", "0", "", "1.00"]
        else:
            yield row
