"""The only module that speaks HTTP to Finale.

`FinaleClient.open_report(url)` gives a report's body as a bounded binary stream (`ReportBody`) for a parser
to read; `FinaleClient.report_rows(url)` parses it with the csv module; `FinaleClient.order_collection()`
returns the decoded order collection. Every failure leaves here as a typed `FinaleError` (see errors.py)
whose message is redacted and never carries a report URL's query string (it can hold filters).

What bounds a download, whatever Finale (or something pretending to be it) sends:
- memory: reads of at most CHUNK bytes; no physical report line longer than FINALE_MAX_LINE_BYTES; the order
  JSON at most FINALE_MAX_ORDERS_BYTES (it is decoded whole); gzip is inflated at most a read at a time;
- size: FINALE_MAX_RESPONSE_BYTES of decoded body;
- time: FINALE_READ_TIMEOUT between two reads, FINALE_TOTAL_TIMEOUT for the whole download;
- where the credentials go: only to FINALE_BASE_URL's scheme, host and port, redirects included.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import csv
import errno
import io
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import IncompleteRead
from urllib.parse import SplitResult, urljoin, urlsplit

import requests
import urllib3
from django.conf import settings

from . import __version__
from .errors import (
    BadRequest,
    ConfigurationError,
    EmptyData,
    FinaleError,
    FinaleTimeout,
    ForeignRedirect,
    HtmlResponse,
    LineTooLong,
    MalformedData,
    NetworkError,
    RateLimited,
    ResponseTooLarge,
    TlsError,
    TruncatedResponse,
    for_status,
)
from .redact import register_secret

USER_AGENT = f"finalesync/{__version__} (+https://github.com/finalesync)"
# One read from the network. Also the most that gzip inflates per read (urllib3 2.x honours the amount asked
# for when decoding), so a compressed bomb never expands by more than this at a time.
CHUNK = 64 * 1024
# Bytes looked at before anything is parsed: enough to tell a login page or an empty body from CSV.
HEAD_BYTES = 4096
# Same-origin redirects followed before giving up; other origins are never followed.
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The csv module's own limit is far above FINALE_MAX_LINE_BYTES, which is the one that bounds a field here.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True)
class Credentials:
    base_url: str
    account: str
    api_key: str
    api_secret: str = ""

    def __repr__(self):  # never show the secret, even in a traceback's locals
        return f"Credentials(base_url={self.base_url!r}, account={self.account!r}, api_key=[set])"


def load_credentials() -> Credentials:
    """The Finale connection settings. The host comes only from settings.FINALE_BASE_URL (the environment):
    whoever may edit the admin must not be able to point the credentials at another host. Account, key and
    secret come from the environment when set, else from the admin."""
    from .models import FinaleConnection

    stored = FinaleConnection.objects.filter(pk=1).first()
    return Credentials(
        base_url=settings.FINALE_BASE_URL,
        account=settings.FINALE_ACCOUNT or (stored.account if stored else ""),
        api_key=settings.FINALE_API_KEY or (stored.api_key if stored else ""),
        api_secret=settings.FINALE_API_SECRET or (stored.api_secret if stored else ""),
    )


# --- URLs and origins -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int
    explicit_port: bool = False

    def __eq__(self, other):
        return isinstance(other, Origin) and (self.scheme, self.host, self.port) == (
            other.scheme,
            other.host,
            other.port,
        )

    def __hash__(self):
        return hash((self.scheme, self.host, self.port))

    def __str__(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.explicit_port or self.port != _DEFAULT_PORTS.get(self.scheme) else ""
        return f"{self.scheme}://{host}{port}"

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def url_problem(url: str) -> str | None:
    """Why `url` is not an absolute http(s) URL we could request, in a few words; None when it is fine.
    Never quotes the URL (its query string can carry filters)."""
    if not url or not url.strip():
        return "it is empty"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "it contains spaces or control characters"
    parts = urlsplit(url)
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        return (
            f"it starts with {parts.scheme + ':' if parts.scheme else 'no scheme'}, not http:// or https://"
        )
    try:
        port = parts.port
    except ValueError:
        return "its port is not a number between 0 and 65535"
    if not parts.hostname:
        return "it has no host name"
    if port == 0:
        return "its port is 0"
    if parts.username is not None or parts.password is not None:
        return "it carries a user name or password (finalesync sends the API key itself)"
    return None


def origin_of(url: str | SplitResult) -> Origin:
    """(scheme, host, port) of an absolute URL, default ports filled in; the URL must have passed
    url_problem()."""
    parts = urlsplit(url) if isinstance(url, str) else url
    scheme = parts.scheme.lower()
    return Origin(
        scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS[scheme], parts.port is not None
    )


def _where(url: str | None) -> str:
    """host:port of a URL for a message, or 'Finale' when it cannot be told."""
    if url and url_problem(url) is None:
        return origin_of(url).host_port
    return "Finale"


# --- errors ---------------------------------------------------------------------------------------------------
# What an answer of each status means for this request (its type: errors.for_status, the one map).
_STATUS_TEXT = {
    401: "Finale rejected the API key/secret for the {what} (HTTP 401)",
    402: "API access is not on the Finale account's plan (HTTP 402)",
    403: "Finale refused the {what} (HTTP 403): this API user may not read {target}: check its permissions in Finale",
    404: "Finale has no such {what}: wrong account or report id (HTTP 404)",
    429: "Finale rate-limited the {what} request (HTTP 429)",
}


def status_error(status: int, body_excerpt: str, *, what: str, retry_after: str | None = None) -> FinaleError:
    """The typed error for a non-2xx answer from Finale."""
    excerpt = " ".join(body_excerpt.split())[:200]
    kind = for_status(status)
    if status in _STATUS_TEXT:
        target = "that report" if "report" in what else f"the {what}"
        message = _STATUS_TEXT[status].format(what=what, target=target)
    elif status >= 500:
        message = f"Finale failed serving the {what} (HTTP {status})"
    else:
        message = f"Finale refused the {what} request (HTTP {status})"
    extra = {"retry_after": parse_retry_after(retry_after)} if kind is RateLimited else {}
    return kind(message, status=status, excerpt=excerpt, **extra)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    from django.utils import timezone

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def looks_like_html(head: bytes) -> bool:
    start = head.lstrip(codecs.BOM_UTF8).lstrip()[:200].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in start


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes/contexts, and the reasons urllib3 and requests tuck into args."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__, getattr(e, "reason", None)])
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))


def _network_cause(exc: BaseException) -> str:
    """A few words on why a connection failed, from the exception chain; '' when unknown."""
    for e in _chain(exc):
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return "the host name does not resolve"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ConnectionResetError):
            return "connection reset"
        if isinstance(e, ConnectionAbortedError):
            return "connection aborted"
        if isinstance(e, OSError) and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "no route to the host"
    text = " ".join(str(e) for e in _chain(exc)).lower()
    for needle, cause in (
        ("name or service not known", "the host name does not resolve"),
        ("temporary failure in name resolution", "the host name does not resolve"),
        ("nodename nor servname", "the host name does not resolve"),
        ("connection refused", "connection refused"),
        ("connection reset", "connection reset"),
        ("remote end closed", "the server closed the connection"),
    ):
        if needle in text:
            return cause
    return ""


def _cert_reason(exc: BaseException) -> str:
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError) and getattr(e, "verify_message", None):
            return e.verify_message
    return "certificate verify failed"


_QUERY = re.compile(r"\?[^\s'\")]*")
_WITH_URL = re.compile(r"(?i)\b(with url|url): *\S+")


def _scrub(text: str) -> str:
    """Drop URLs' query strings (they can carry filters) and urllib3's 'with url: ...' from a library text."""
    return _QUERY.sub("", _WITH_URL.sub(r"\1: [url]", text))[:200]


def translate(exc: Exception, *, what: str, url: str | None = None) -> FinaleError:
    """Map a requests/urllib3/socket exception to the typed error it means, with a one-line cause and fix
    that names the host and port, never the path's query string."""
    if isinstance(exc, FinaleError):
        return exc
    where = _where(url)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in _chain(exc)) or (
        isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError))
        and "certificate verify failed" in str(exc).lower()
    ):
        return TlsError(
            f"The TLS certificate of {where} could not be verified for the {what} ({_cert_reason(exc)}): "
            "check FINALE_BASE_URL and this machine's CA certificates"
        )
    if isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError)):
        return NetworkError(f"The TLS handshake with {where} failed for the {what}; a retry is queued")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return ConfigurationError(
            f"The {what} URL is not a valid URL: copy the export URL from Finale again",
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return FinaleTimeout(
            f"{where} did not accept a connection in time for the {what} (FINALE_CONNECT_TIMEOUT): "
            "check FINALE_BASE_URL and the network"
        )
    if isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)) or any(
        isinstance(e, socket.timeout) for e in _chain(exc)
    ):
        return FinaleTimeout(
            f"{where} stopped sending the {what} for longer than FINALE_READ_TIMEOUT; a retry is queued"
        )
    if isinstance(exc, (urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError)):
        if any(isinstance(e, IncompleteRead) for e in _chain(exc)) or "prematurely" in str(exc):
            return TruncatedResponse(
                f"The transfer of the {what} from {where} was cut short (fewer bytes than announced, or a "
                "broken chunked body); a retry is queued"
            )
        cause = _network_cause(exc) or "broken transfer"
        return NetworkError(
            f"The connection to {where} broke while reading the {what} ({cause}); a retry is queued"
        )
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError, OSError)):
        cause = _network_cause(exc) or "the connection failed"
        return NetworkError(
            f"Could not reach Finale at {where} for the {what}: {cause}. Check FINALE_BASE_URL and this "
            "machine's network and DNS"
        )
    return NetworkError(f"The request for the {what} failed: {type(exc).__name__}: {_scrub(str(exc))}")


# --- the body -------------------------------------------------------------------------------------------------
class _Deadline:
    """The total time one download may take. A timer cuts the socket when it passes, because a read that
    keeps receiving a few bytes every so often never trips the read timeout and never returns to check."""

    def __init__(self, seconds: float, *, what: str, url: str | None):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.what = what
        self.url = url
        self.fired = False
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.fired or time.monotonic() >= self.at

    def error(self) -> FinaleTimeout:
        return FinaleTimeout(
            f"The {self.what} from {_where(self.url)} took longer than FINALE_TOTAL_TIMEOUT "
            f"({self.seconds:g} s) to download; a retry is queued",
            advice="Finale sent the data too slowly. If a large report is simply slow, raise "
            "FINALE_TOTAL_TIMEOUT (keep it below SYNC_LOCK_TTL_SECONDS and Q_TIMEOUT).",
        )

    def check(self) -> None:
        if self.expired:
            raise self.error()

    def arm(self, response: requests.Response) -> None:
        """Cut `response`'s connection when the deadline passes (the blocked read then returns)."""
        self.cancel()

        sock = _socket_of(response)

        def cut():
            self.fired = True
            if sock is not None:
                # The plain socket's shutdown, also for TLS: it wakes a reader blocked in another thread
                # without touching the TLS object that reader is using.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

        self._timer = threading.Timer(max(0.0, self.remaining()), cut)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket a streamed response reads from. urllib3 keeps it on the connection, except when the body
    is close-delimited: http.client then hands the socket to the response and forgets it on the
    connection, and only the response's file still holds it."""
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)  # http.client.HTTPResponse → its socket file
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class _BodyStream(io.RawIOBase):
    """The decoded body of one response as a raw stream, with every limit enforced as bytes arrive."""

    def __init__(
        self,
        response: requests.Response,
        *,
        what: str,
        url: str,
        deadline: _Deadline,
        max_bytes: int,
        max_line_bytes: int | None,
        size_setting: str,
    ):
        self._response = response
        self._raw = response.raw
        self._what = what
        self._url = url
        self._deadline = deadline
        self._max = max_bytes
        self._max_line = max_line_bytes
        self._size_setting = size_setting
        self._pending = b""  # read ahead by prefetch(), served first
        self.served = 0  # bytes handed to the reader
        self._line = 0  # bytes since the last line feed
        self._last = b""
        self.bytes_read = 0
        self.at_eof = False
        self.end_verified = False
        self.ends_with_newline = False

    def readable(self) -> bool:
        return True

    def prefetch(self, size: int) -> bytes:
        """Read ahead until `size` bytes or the end, and return them (they are still served by read)."""
        while len(self._pending) < size and not self.at_eof:
            data = self._next(CHUNK)
            if not data:
                break
            self._pending += data
        return self._pending[:size]

    def readinto(self, buffer) -> int:
        if self._pending:
            n = min(len(buffer), len(self._pending))
            buffer[:n] = self._pending[:n]
            self._pending = self._pending[n:]
        else:
            data = self._next(min(len(buffer), CHUNK))
            n = len(data)
            buffer[:n] = data
        self.served += n
        return n

    def _next(self, size: int) -> bytes:
        if self.at_eof or size <= 0:
            return b""
        self._deadline.check()
        try:
            data = self._raw.read(size, decode_content=True)
        except Exception as exc:  # noqa: BLE001 - everything becomes a typed error
            # `from None`: urllib3's texts quote the URL with its query string, which must not reach a log.
            if self._deadline.expired:
                raise self._deadline.error() from None
            raise translate(exc, what=self._what, url=self._url) from None
        if self._deadline.expired:
            # The watchdog cut the socket: what looks like an end (or more data) is not the real body.
            raise self._deadline.error()
        if not data:
            self._finish()
            return b""
        self.bytes_read += len(data)
        if self.bytes_read > self._max:
            raise ResponseTooLarge(
                f"The {self._what} is larger than the {self._max:,} byte limit ({self._size_setting})",
                advice=f"The response is bigger than {self._size_setting}; raise it or narrow the report "
                "in Finale. Nothing was applied.",
            )
        if self._max_line is not None:
            self._check_lines(data)
        self._last = data[-1:]
        return data

    def _check_lines(self, data: bytes) -> None:
        # find/rfind per read, not a scan per byte: a 1 GiB line is refused after about the limit. Lines end
        # in LF (Finale sends CRLF); a body with bare CR line ends would count as one line.
        limit = self._max_line
        first = data.find(b"\n")
        if first < 0:
            self._line += len(data)
        else:
            longest = self._line + first
            last = data.rfind(b"\n")
            if last - first - 1 > limit:  # a whole line inside this read (only when reads exceed the limit)
                longest = max(longest, *(len(p) for p in data[first + 1 : last].split(b"\n")))
            if longest > limit:
                self._line = longest
            else:
                self._line = len(data) - last - 1
        if self._line > limit:
            raise LineTooLong(
                f"The {self._what} has a line longer than {limit:,} bytes (FINALE_MAX_LINE_BYTES); "
                "refusing to read it",
                details={"max_line_bytes": limit, "bytes_read": self.bytes_read},
            )

    def _finish(self) -> None:
        self.at_eof = True
        self.ends_with_newline = self._last in (b"\n", b"\r")
        raw = self._raw
        length = raw.headers.get("Content-Length")
        if getattr(raw, "chunked", False):
            # http.client raises IncompleteRead unless the terminating zero-length chunk arrived, so
            # getting here means it did.
            self.end_verified = True
        elif length is not None and length.strip().isdigit():
            # urllib3 counts the bytes on the wire (before gzip is undone) and raises on a short body.
            self.end_verified = raw.tell() == int(length)
        else:
            # Close-delimited: the body ended when the connection did, which a cut transfer also does.
            self.end_verified = False

    def close(self) -> None:
        if not self.closed:
            self._pending = b""
            self._response.close()
        super().close()


class ReportBody(io.BufferedReader):
    """A report's decoded body as a buffered binary file (read, readinto, peek, readable, closed), e.g. for
    `pyarrow.csv.open_csv`. Reading raises typed FinaleErrors: ResponseTooLarge, LineTooLong,
    FinaleTimeout (FINALE_TOTAL_TIMEOUT or the read timeout), TruncatedResponse and NetworkError.

    Once read to the end: `end_verified` says whether the end of the transfer was proven (Content-Length
    matched, or the chunked body's terminating chunk arrived) rather than just the connection closing;
    `ends_with_newline` whether the last byte is a line end; `bytes_read` the decoded size. Before the end
    `at_eof` is False and `end_verified` is False."""

    def __init__(self, stream: _BodyStream, *, status: int, content_type: str):
        super().__init__(stream, buffer_size=CHUNK)
        self.status = status
        self.content_type = content_type

    def peek_head(self, size: int) -> bytes:
        """The first `size` bytes of the body (fewer when it is shorter), without consuming them: for finding
        the header row and counting its columns before a parser commits to them. Only before the first
        read; every limit applies (a line longer than FINALE_MAX_LINE_BYTES raises LineTooLong)."""
        if self.raw.served:
            raise ValueError("peek_head() is only possible before the body is read")
        return self.raw.prefetch(size)

    @property
    def at_eof(self) -> bool:
        return self.raw.at_eof

    @property
    def end_verified(self) -> bool:
        return self.raw.end_verified

    @property
    def ends_with_newline(self) -> bool:
        return self.raw.ends_with_newline

    @property
    def bytes_read(self) -> int:
        return self.raw.bytes_read


class OrderCollection(dict):
    """The order collection as Finale sends it (a dict of field name → array), plus how it arrived:
    `end_verified` (as ReportBody's) and `bytes_read`."""

    end_verified: bool = False
    bytes_read: int = 0


class FinaleClient:
    """A session to one Finale account. Use as a context manager or call close()."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_bytes: int | None = None,
        verify: bool | None = None,
    ):
        problem = url_problem(credentials.base_url)
        if problem:
            raise ConfigurationError(
                f"FINALE_BASE_URL is not a valid URL ({problem}): set it to https://app.finaleinventory.com "
                "or your Finale address"
            )
        if not credentials.account:
            raise ConfigurationError("FINALE_ACCOUNT is not set (environment or admin)")
        if not credentials.api_key or not credentials.api_secret:
            raise ConfigurationError("The Finale API key and secret are not set (environment or admin)")
        # Whatever Finale echoes back (an error page quoting the key) is masked from here on.
        register_secret(credentials.api_secret)
        register_secret(credentials.api_key)
        self.credentials = credentials
        self.origin = origin_of(credentials.base_url)
        self.connect_timeout = (
            connect_timeout if connect_timeout is not None else settings.FINALE_CONNECT_TIMEOUT
        )
        self.read_timeout = read_timeout if read_timeout is not None else settings.FINALE_READ_TIMEOUT
        self.timeout = (self.connect_timeout, self.read_timeout)
        self.max_bytes = max_bytes or settings.FINALE_MAX_RESPONSE_BYTES
        self.session = requests.Session()
        self.session.auth = (credentials.api_key, credentials.api_secret)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.verify = settings.FINALE_VERIFY_TLS if verify is None else verify
        # Proxies from the environment could route loopback test traffic or credentials elsewhere.
        self.session.trust_env = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.session.close()

    def account_url(self, path: str) -> str:
        base = self.credentials.base_url.rstrip("/")
        return f"{base}/{self.credentials.account}/{path.lstrip('/')}"

    def resolve(self, url: str, *, what: str = "report") -> str:
        """Report URLs are stored whole; a path-only URL is taken relative to the base URL. Raises
        ConfigurationError for a malformed URL or one whose scheme, host or port is not the base URL's (the
        API key travels with the request: never to a host other than Finale's)."""
        if not url or not url.strip():
            raise ConfigurationError(f"No URL is configured for the {what}")
        url = url.strip()
        first_segment = url.lstrip("/").split("/", 1)[0]
        if not urlsplit(url).scheme and not url.startswith("//") and "." not in first_segment:
            # A path such as /acme/doc/report/...; a host without its scheme (app.finaleinventory.com/...)
            # is refused below rather than joined into a path that would 404.
            url = urljoin(self.credentials.base_url.rstrip("/") + "/", url.lstrip("/"))
        problem = url_problem(url)
        if problem:
            raise ConfigurationError(
                f"The {what} URL is not a valid URL ({problem}): copy the report's export URL from Finale "
                f"again; it starts with {self.origin}/"
            )
        target = origin_of(url)
        if target != self.origin:
            raise ConfigurationError(
                f"The {what} URL points at {target}, not at FINALE_BASE_URL ({self.origin}); refusing to "
                "send the API credentials there. Copy the export URL from Finale, or set FINALE_BASE_URL if "
                "your Finale address differs"
            )
        return url

    def _get(self, url: str, *, what: str, deadline: _Deadline, params=None) -> requests.Response:
        """GET with Basic auth; same-origin redirects followed (credentials kept), others refused."""
        for _hop in range(MAX_REDIRECTS + 1):
            deadline.check()
            read_timeout = max(0.1, min(self.read_timeout, deadline.remaining()))
            try:
                response = self.session.get(
                    url,
                    params=params,
                    timeout=(self.connect_timeout, read_timeout),
                    stream=True,
                    allow_redirects=False,
                )
            except Exception as exc:  # noqa: BLE001
                if deadline.expired:
                    raise deadline.error() from None
                raise translate(exc, what=what, url=url) from None
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                target = urljoin(response.url, location)
                problem = url_problem(target)
                if problem or origin_of(target) != self.origin:
                    shown = "an unreadable address" if problem else str(origin_of(target))
                    raise ForeignRedirect(
                        f"Finale redirected the {what} request to {shown} (HTTP {response.status_code}), "
                        f"which is not FINALE_BASE_URL ({self.origin}); not followed, the credentials and "
                        "data stay with Finale's own host",
                        status=response.status_code,
                    )
                url, params = target, None  # the Location already carries its query
                continue
            if response.status_code >= 300:
                try:
                    excerpt = response.raw.read(2048, decode_content=True).decode("utf-8", "replace")
                except Exception:  # noqa: BLE001 - the status already says what went wrong
                    excerpt = ""
                response.close()
                raise status_error(
                    response.status_code, excerpt, what=what, retry_after=response.headers.get("Retry-After")
                )
            return response
        raise BadRequest(
            f"Finale redirected the {what} request more than {MAX_REDIRECTS} times; check the report URL",
            status=response.status_code,
        )

    @contextmanager
    def _body(
        self,
        url: str,
        *,
        what: str,
        params=None,
        max_bytes: int,
        max_line_bytes: int | None,
        size_setting: str,
    ) -> Iterator[tuple[ReportBody, bytes]]:
        deadline = _Deadline(settings.FINALE_TOTAL_TIMEOUT, what=what, url=url)
        response = self._get(url, what=what, deadline=deadline, params=params)
        stream = _BodyStream(
            response,
            what=what,
            url=url,
            deadline=deadline,
            max_bytes=max_bytes,
            max_line_bytes=max_line_bytes,
            size_setting=size_setting,
        )
        body = ReportBody(
            stream, status=response.status_code, content_type=response.headers.get("Content-Type", "")
        )
        try:
            deadline.arm(response)
            head = stream.prefetch(HEAD_BYTES)
            yield body, head
        finally:
            deadline.cancel()
            body.close()

    @contextmanager
    def open_report(self, url: str, *, what: str = "report") -> Iterator[ReportBody]:
        """Open a report's body for reading: yields a ReportBody (see there) over the decoded bytes.

        Raises on open: the HTTP/network errors, ConfigurationError (bad or foreign URL), ForeignRedirect,
        HtmlResponse (a web page, usually Finale's login page), EmptyData (an empty or blank body). While
        reading: ResponseTooLarge, LineTooLong, FinaleTimeout, TruncatedResponse, NetworkError.
        """
        url = self.resolve(url, what=what)
        with self._body(
            url,
            what=what,
            max_bytes=self.max_bytes,
            max_line_bytes=settings.FINALE_MAX_LINE_BYTES,
            size_setting="FINALE_MAX_RESPONSE_BYTES",
        ) as (body, head):
            if "html" in body.content_type.lower() or looks_like_html(head):
                raise HtmlResponse(
                    f"Finale answered the {what} with a web page instead of CSV (usually its login page)",
                    status=body.status,
                    excerpt=_html_excerpt(head),
                )
            if not head.strip(codecs.BOM_UTF8 + b" \r\n\t"):
                raise EmptyData(f"Finale returned an empty {what} (no header, no rows)", status=body.status)
            yield body

    def order_collection(self, *, order_type: str = "PURCHASE_ORDER") -> OrderCollection:
        """GET the order collection (column-major JSON), asking Finale for `order_type` only. Finale's type
        filter is unreliable, so callers filter again. Returns an OrderCollection (a dict, plus
        `end_verified` and `bytes_read`). Raises the usual HTTP/network errors, HtmlResponse, EmptyData,
        ResponseTooLarge (over FINALE_MAX_ORDERS_BYTES), FinaleTimeout, and MalformedData for JSON that is
        invalid or not an object."""
        what = "order collection"
        flt = base64.b64encode(json.dumps({"orderTypeId": [order_type, order_type]}).encode()).decode()
        cap = min(settings.FINALE_MAX_ORDERS_BYTES, self.max_bytes)
        with self._body(
            self.account_url("api/order/"),
            what=what,
            params={"filter": flt},
            max_bytes=cap,
            max_line_bytes=None,  # Finale sends the JSON as one line; the size cap bounds it
            size_setting="FINALE_MAX_ORDERS_BYTES",
        ) as (body, head):
            if "html" in body.content_type.lower() or looks_like_html(head):
                raise HtmlResponse(
                    f"Finale answered the {what} with a web page instead of JSON",
                    status=body.status,
                    excerpt=_html_excerpt(head),
                )
            # A bytearray grown in place: about one copy of the body at a time, not a list plus a join.
            data = bytearray()
            while chunk := body.read1(CHUNK):
                data += chunk
            end_verified, size = body.end_verified, body.bytes_read
        if not data.strip():
            raise EmptyData(f"Finale returned an empty {what}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedData(f"The {what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        excerpt = text[:120]
        del data
        try:
            # NaN and ±Infinity are read (Python's json accepts them): the order holding one becomes a
            # counted bad row, the others still sync.
            decoded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MalformedData(f"The {what} is not valid JSON: {exc}", excerpt=excerpt) from None
        except RecursionError:
            raise MalformedData(f"The {what} is nested too deeply to be an order collection") from None
        del text
        if not isinstance(decoded, dict):
            raise MalformedData(
                f"The {what} is a JSON {type(decoded).__name__}, expected an object of arrays"
            )
        collection = OrderCollection(decoded)
        collection.end_verified = end_verified
        collection.bytes_read = size
        return collection


def _html_excerpt(head: bytes) -> str:
    text = head[:2048].decode("utf-8", "replace")
    title = re.search(r"(?is)<title>(.*?)</title>", text)
    return ("<title>" + title.group(1).strip() + "</title>") if title else " ".join(text.split())[:120]
