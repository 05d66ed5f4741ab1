"""The client against real HTTP on loopback: how each transfer's end is verified, the total deadline
against a drip-feed, hostile bodies refused with bounded memory (measured in a subprocess), and redirects
that never carry the credentials to another origin."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from finalesync import errors
from finalesync.checks import check_download_deadline
from finalesync.client import Credentials, FinaleClient
from finalesync.simulator import FinaleSimulator

from .conftest import ROOT, SIM_SECRET

BODY = b"SKU,Name,Qty\r\nA,Bolt,1\r\nB,Nut,2\r\n"
PEAK_LIMIT_MIB = 300


class RawServer:
    """A loopback server that answers every connection with `script(conn)` after reading the request
    head, and records the heads it received."""

    def __init__(self, script):
        self.script = script
        self.requests: list[bytes] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            self.requests.append(head)
            try:
                self.script(conn)
            except OSError:
                pass

    def close(self):
        self._sock.close()


@pytest.fixture
def serve():
    servers = []

    def start(script) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client_for(base_url: str, **kwargs) -> FinaleClient:
    kwargs.setdefault("read_timeout", 2)
    return FinaleClient(Credentials(base_url, "acme", "key-123456", SIM_SECRET), **kwargs)


def read_report(base_url: str, **kwargs):
    with (
        client_for(base_url, **kwargs) as client,
        client.open_report(f"{base_url}/acme/r.csv?filters=x") as body,
    ):
        data = body.read()
        return data, body


def head(extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n" + extra + b"\r\n"


# --- how the end of a transfer is known ----------------------------------------------------------------------
def test_a_body_with_a_matching_content_length_has_a_verified_end(serve):
    server = serve(lambda c: c.sendall(head(b"Content-Length: %d\r\n" % len(BODY)) + BODY))
    data, body = read_report(server.base_url)
    assert data == BODY and body.end_verified and body.ends_with_newline and body.bytes_read == len(BODY)


def test_a_chunked_body_with_its_final_chunk_has_a_verified_end(serve):
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    server = serve(lambda c: c.sendall(head(b"Transfer-Encoding: chunked\r\n") + chunked))
    data, body = read_report(server.base_url)
    assert data == BODY and body.end_verified


def test_a_body_that_ends_when_the_connection_closes_is_not_verified(serve):
    server = serve(lambda c: c.sendall(head(b"Connection: close\r\n") + BODY))
    data, body = read_report(server.base_url)
    assert data == BODY and not body.end_verified and body.ends_with_newline


def test_a_gzip_body_is_decoded_and_its_end_checked_on_the_wire_bytes(serve):
    packed = gzip.compress(BODY)
    server = serve(
        lambda c: c.sendall(head(b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(packed)) + packed)
    )
    data, body = read_report(server.base_url)
    assert data == BODY and body.end_verified and body.bytes_read == len(BODY)


@pytest.mark.parametrize(
    "response",
    [
        head(b"Content-Length: %d\r\n" % (len(BODY) + 40)) + BODY,  # fewer bytes than announced
        head(b"Transfer-Encoding: chunked\r\n") + b"%x\r\n%s\r\n" % (len(BODY), BODY),  # no final chunk
        head(b"Transfer-Encoding: chunked\r\n") + b"%x\r\n%s" % (len(BODY) + 9, BODY),  # cut inside a chunk
        head(b"Transfer-Encoding: chunked\r\n") + b"zz\r\n" + BODY,  # not chunked at all
    ],
    ids=["content-length", "no-final-chunk", "inside-a-chunk", "bad-chunk-size"],
)
def test_a_transfer_cut_short_is_truncated_and_recoverable(serve, response):
    server = serve(lambda c: c.sendall(response))
    with pytest.raises(errors.TruncatedResponse) as info:
        read_report(server.base_url)
    assert info.value.recoverable and f"127.0.0.1:{server.port}" in str(info.value)
    assert "filters" not in str(info.value)


def test_a_reset_connection_is_a_network_error(serve):
    def reset(conn):
        conn.sendall(head(b"Content-Length: 100000\r\n") + BODY)
        time.sleep(0.05)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    server = serve(reset)
    with pytest.raises(errors.NetworkError) as info:
        read_report(server.base_url)
    assert type(info.value) is errors.NetworkError and "connection reset" in str(info.value)


# --- the simulator's cut and hostile faults ------------------------------------------------------------------
@pytest.fixture
def sim():
    counts = {"inventory": 400, "vendors": 40, "boms": 40, "purchase_orders": 60}
    with FinaleSimulator(port=0, seed=3, counts=counts, api_secret=SIM_SECRET) as simulator:
        yield simulator


def sim_client(sim, **kwargs) -> FinaleClient:
    kwargs.setdefault("read_timeout", 2)
    return FinaleClient(Credentials(sim.base_url, sim.account, sim.api_key, sim.api_secret), **kwargs)


def test_a_simulator_report_has_a_verified_end_and_a_close_delimited_cut_has_not(sim):
    with sim_client(sim) as client:
        with client.open_report(sim.report_url("inventory")) as body:
            whole = body.read()
            assert body.end_verified and body.ends_with_newline
        sim.set_fault("inventory", "cut_close_delimited")
        with client.open_report(sim.report_url("inventory")) as body:
            cut = body.read()
            assert not body.end_verified and body.ends_with_newline
    assert whole.startswith(cut) and 0.7 < cut.count(b"\r\n") / whole.count(b"\r\n") < 0.8


def test_a_close_delimited_order_collection_says_its_end_is_not_verified(sim):
    with sim_client(sim) as client:
        assert client.order_collection().end_verified
        sim.set_fault("purchase_orders", "cut_close_delimited")
        cut = client.order_collection()
    assert not cut.end_verified and len(cut["orderId"]) == 45


@pytest.mark.parametrize("data_type", ["inventory", "purchase_orders"])
def test_a_drip_feed_is_stopped_by_the_total_deadline(sim, settings, data_type):
    settings.FINALE_TOTAL_TIMEOUT = 1.5
    sim.set_fault(data_type, "drip")
    started = time.monotonic()
    with sim_client(sim, read_timeout=1.0) as client, pytest.raises(errors.FinaleTimeout) as info:
        if data_type == "inventory":
            with client.open_report(sim.report_url("inventory")) as body:
                body.read()
        else:
            client.order_collection()
    assert 1.4 < time.monotonic() - started < 3
    assert "FINALE_TOTAL_TIMEOUT" in str(info.value) and info.value.recoverable


def test_the_gzip_bomb_report_is_refused_after_about_a_line(sim):
    sim.set_fault("inventory", "gzip_bomb")
    with sim_client(sim) as client, pytest.raises(errors.LineTooLong) as info:
        with client.open_report(sim.report_url("inventory")) as body:
            body.read()
    assert info.value.details["bytes_read"] < 2 * 1024 * 1024


def test_the_gzip_bomb_order_collection_stops_at_its_cap(sim, settings):
    settings.FINALE_MAX_ORDERS_BYTES = 4 * 1024 * 1024
    sim.set_fault("purchase_orders", "gzip_bomb")
    with sim_client(sim) as client, pytest.raises(errors.ResponseTooLarge, match="FINALE_MAX_ORDERS_BYTES"):
        client.order_collection()


def test_peek_head_shows_the_start_without_consuming_it(sim):
    with sim_client(sim) as client, client.open_report(sim.report_url("inventory")) as body:
        head_bytes = body.peek_head(20_000)
        assert head_bytes.startswith(b"\xef\xbb\xbfInventory report\r\n") and len(head_bytes) == 20_000
        assert body.read(len(head_bytes)) == head_bytes
        with pytest.raises(ValueError, match="before the body is read"):
            body.peek_head(10)


def test_peek_head_applies_the_line_limit(serve, settings):
    settings.FINALE_MAX_LINE_BYTES = 10_000
    long_header = b",".join(b"c%d" % n for n in range(20_000)) + b"\r\n"
    server = serve(lambda c: c.sendall(head(b"Content-Length: %d\r\n" % len(long_header)) + long_header))
    with pytest.raises(errors.LineTooLong), client_for(server.base_url) as client:
        with client.open_report(f"{server.base_url}/acme/r.csv") as body:
            body.peek_head(1_000_000)


# --- redirects on loopback -----------------------------------------------------------------------------------
def test_a_redirect_to_another_loopback_port_never_reaches_it(serve):
    other = serve(lambda c: c.sendall(head(b"Content-Length: %d\r\n" % len(BODY)) + BODY))
    location = f"{other.base_url}/acme/r.csv".encode()
    finale = serve(
        lambda c: c.sendall(b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % location)
    )
    with pytest.raises(errors.ForeignRedirect) as info:
        read_report(finale.base_url)
    assert other.requests == []  # not even a connection carried a request there
    assert f"127.0.0.1:{other.port}" in str(info.value)
    expected = base64.b64encode(f"key-123456:{SIM_SECRET}".encode())
    assert expected in finale.requests[0]


def test_a_same_origin_redirect_on_loopback_keeps_the_credentials(serve):
    answers = iter(
        [
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /acme/moved.csv\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            head(b"Content-Length: %d\r\n" % len(BODY)) + BODY,
        ]
    )
    server = serve(lambda c: c.sendall(next(answers)))
    data, _ = read_report(server.base_url)
    assert data == BODY and len(server.requests) == 2
    assert all(b"Authorization: Basic " in request for request in server.requests)
    assert server.requests[1].startswith(b"GET /acme/moved.csv ")


# --- settings -----------------------------------------------------------------------------------------------
def test_default_total_timeout_passes_the_system_check():
    assert check_download_deadline(None) == []


def test_a_total_timeout_past_the_lock_lease_or_the_task_timeout_is_an_error(settings):
    settings.FINALE_TOTAL_TIMEOUT = 2000
    settings.SYNC_LOCK_TTL_SECONDS = 1800
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 1500}
    problems = check_download_deadline(None)
    assert [p.id for p in problems] == ["finalesync.E003", "finalesync.E004"]
    assert all(p.hint for p in problems)
    settings.FINALE_TOTAL_TIMEOUT = 0
    assert [p.id for p in check_download_deadline(None)] == ["finalesync.E002"]


def test_limits_have_their_documented_defaults():
    from django.conf import settings

    assert settings.FINALE_MAX_LINE_BYTES == 1024**2
    assert settings.FINALE_MAX_COLUMNS == 500
    assert settings.FINALE_MAX_ORDERS_BYTES == 32 * 1024**2
    assert settings.FINALE_TOTAL_TIMEOUT == 900


# --- memory, measured in a subprocess ------------------------------------------------------------------------
def measure(sim_or_server, target: str, *, api_key="key-123456", account="acme", extra=()) -> dict:
    base_url = sim_or_server.base_url
    script = ROOT / "tests" / "scripts" / "client_peak_memory.py"
    done = subprocess.run(
        [sys.executable, str(script), base_url, account, api_key, SIM_SECRET, target, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["read", "pyarrow"])
def test_a_gzip_bomb_report_is_refused_with_bounded_memory(sim, reader):
    if reader == "pyarrow":
        pytest.importorskip("pyarrow.csv")
    sim.set_fault("inventory", "gzip_bomb")
    extra = ("--pyarrow",) if reader == "pyarrow" else ()
    result = measure(sim, sim.report_url("inventory"), api_key=sim.api_key, account=sim.account, extra=extra)
    assert result["error"] == "LineTooLong", result
    assert result["peak_mib"] < PEAK_LIMIT_MIB, result


@pytest.mark.slow
def test_a_gzip_bomb_order_collection_is_refused_with_bounded_memory(sim):
    sim.set_fault("purchase_orders", "gzip_bomb")
    result = measure(sim, "orders", api_key=sim.api_key, account=sim.account)
    assert result["error"] == "ResponseTooLarge", result
    assert result["peak_mib"] < PEAK_LIMIT_MIB, result


@pytest.mark.slow
def test_a_header_with_a_million_columns_is_refused_with_bounded_memory(serve):
    header = ",".join(f"Column {n}" for n in range(1_000_000)).encode() + b"\r\n"
    packed = gzip.compress(header + b"a,b\r\n", compresslevel=6)
    server = serve(
        lambda c: c.sendall(head(b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(packed)) + packed)
    )
    result = measure(server, f"{server.base_url}/acme/r.csv")
    assert result["error"] == "LineTooLong", result
    assert result["peak_mib"] < PEAK_LIMIT_MIB, result
