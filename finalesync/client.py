"""The only module that speaks HTTP to Finale.

`FinaleClient.report_rows(url)` streams a report CSV as lists of cells; `FinaleClient.order_collection()`
returns the decoded order collection. Every failure leaves here as a typed `FinaleError` (see errors.py)
whose message is redacted.
"""

from __future__ import annotations

import base64
import codecs
import csv
import io
import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from django.conf import settings

from . import __version__
from .errors import (
    AuthError,
    BadRequest,
    ConfigurationError,
    EmptyData,
    FinaleError,
    FinaleTimeout,
    HtmlResponse,
    MalformedData,
    NetworkError,
    NotFound,
    RateLimited,
    ResponseTooLarge,
    ServerError,
    TlsError,
    TruncatedResponse,
)
from .redact import register_secret

USER_AGENT = f"finalesync/{__version__} (+https://github.com/finalesync)"
CHUNK = 64 * 1024
# Finale may be slow to start a big export; the read timeout bounds the gap between bytes, not the total.
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
    """The Finale connection settings: each value from the environment when set, else from the admin."""
    from .models import FinaleConnection

    stored = FinaleConnection.objects.filter(pk=1).first()
    creds = Credentials(
        base_url=(settings.FINALE_BASE_URL if _env_set("FINALE_BASE_URL") else (stored and stored.base_url))
        or settings.FINALE_BASE_URL,
        account=settings.FINALE_ACCOUNT or (stored.account if stored else ""),
        api_key=settings.FINALE_API_KEY or (stored.api_key if stored else ""),
        api_secret=settings.FINALE_API_SECRET or (stored.api_secret if stored else ""),
    )
    return creds


def _env_set(name: str) -> bool:
    import os

    return bool(os.environ.get(name))


def status_error(status: int, body_excerpt: str, *, what: str, retry_after: str | None = None) -> FinaleError:
    """The typed error for a non-2xx answer from Finale."""
    excerpt = " ".join(body_excerpt.split())[:200]
    if status == 401:
        return AuthError(
            f"Finale rejected the API key/secret for the {what} (HTTP 401)", status=status, excerpt=excerpt
        )
    if status == 402:
        return AuthError(
            "API access is not on the Finale account's plan (HTTP 402)", status=status, excerpt=excerpt
        )
    if status == 403:
        return AuthError(
            f"The API key's user may not read the {what} (HTTP 403)", status=status, excerpt=excerpt
        )
    if status == 404:
        return NotFound(
            f"Finale has no such {what}: wrong account or report id (HTTP 404)",
            status=status,
            excerpt=excerpt,
        )
    if status == 429:
        return RateLimited(
            f"Finale rate-limited the {what} request (HTTP 429)",
            status=status,
            excerpt=excerpt,
            retry_after=parse_retry_after(retry_after),
        )
    if status >= 500:
        return ServerError(
            f"Finale failed serving the {what} (HTTP {status})", status=status, excerpt=excerpt
        )
    return BadRequest(f"Finale refused the {what} request (HTTP {status})", status=status, excerpt=excerpt)


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


def translate(exc: Exception, *, what: str) -> FinaleError:
    """Map a requests/urllib3/socket exception to the typed error it means."""
    if isinstance(exc, FinaleError):
        return exc
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(exc, ssl.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text.lower():
            return TlsError(f"TLS certificate verification failed for the {what}: {text}")
        return NetworkError(f"TLS handshake with Finale failed for the {what}: {text}")
    if (
        isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError))
        or "timed out" in text.lower()
    ):
        return FinaleTimeout(f"Finale did not answer the {what} request in time: {text}")
    if isinstance(exc, (urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError)):
        return NetworkError(f"The connection broke while reading the {what}: {text}")
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError, OSError)):
        return NetworkError(f"Could not reach Finale for the {what}: {text}")
    if isinstance(exc, requests.exceptions.InvalidURL):
        return ConfigurationError(f"The {what} URL is not valid: {text}")
    return NetworkError(f"Request for the {what} failed: {type(exc).__name__}: {text}")


class _CappedRaw(io.RawIOBase):
    """A readable stream over a response body that enforces the size cap and translates read errors."""

    def __init__(self, response: requests.Response, *, max_bytes: int, what: str):
        self._raw = response.raw
        self._max = max_bytes
        self._what = what
        self.bytes_read = 0

    def readable(self):
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._raw.read(len(buffer), decode_content=True)
        except Exception as exc:  # noqa: BLE001 - everything becomes a typed error
            raise translate(exc, what=self._what) from exc
        n = len(data)
        self.bytes_read += n
        if self.bytes_read > self._max:
            raise ResponseTooLarge(f"The {self._what} is larger than the {self._max:,} byte limit")
        buffer[:n] = data
        return n


class _Lines:
    """Line iterator that remembers the text of the record the csv reader is on, to spot a cut-off tail."""

    def __init__(self, text: io.TextIOBase, what: str):
        self._text = text
        self._what = what
        self.current: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            line = next(self._text)
        except UnicodeDecodeError as exc:
            raise MalformedData(
                f"The {self._what} is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        self.current.append(line)
        return line


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
        if not credentials.account:
            raise ConfigurationError("FINALE_ACCOUNT is not set (environment or admin)")
        if not credentials.api_key or not credentials.api_secret:
            raise ConfigurationError("The Finale API key and secret are not set (environment or admin)")
        # Whatever Finale echoes back (an error page quoting the key) is masked from here on.
        register_secret(credentials.api_secret)
        register_secret(credentials.api_key)
        self.credentials = credentials
        self.timeout = (
            connect_timeout if connect_timeout is not None else settings.FINALE_CONNECT_TIMEOUT,
            read_timeout if read_timeout is not None else settings.FINALE_READ_TIMEOUT,
        )
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

    def resolve(self, url: str) -> str:
        """Report URLs are stored whole; a path-only URL is taken relative to the base URL."""
        if not url:
            raise ConfigurationError("No report URL is configured for this data type")
        if not urlsplit(url).scheme:
            return urljoin(self.credentials.base_url.rstrip("/") + "/", url.lstrip("/"))
        # The API key travels with the request: never to a host other than Finale's (a mistyped or pasted
        # URL must not hand the credentials to someone else).
        target, base = urlsplit(url), urlsplit(self.credentials.base_url)
        if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()):
            raise ConfigurationError(
                f"The report URL points at {target.scheme}://{target.hostname}, not at the Finale base URL "
                f"{base.scheme}://{base.hostname}; refusing to send the API credentials there"
            )
        return url

    def _get(self, url: str, *, what: str, params=None) -> requests.Response:
        try:
            response = self.session.get(url, params=params, timeout=self.timeout, stream=True)
        except Exception as exc:  # noqa: BLE001
            raise translate(exc, what=what) from exc
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

    @contextmanager
    def report_rows(self, url: str, *, what: str = "report") -> Iterator[Iterator[list[str]]]:
        """Stream a report CSV: yields an iterator of rows (lists of cells), read as it is consumed.

        Raises (on open or while iterating) HtmlResponse, EmptyData (empty body), MalformedData (not UTF-8),
        TruncatedResponse (body cut inside a row), ResponseTooLarge, and the HTTP/network errors.
        """
        response = self._get(self.resolve(url), what=what)
        try:
            raw = _CappedRaw(response, max_bytes=self.max_bytes, what=what)
            buffered = io.BufferedReader(raw, buffer_size=CHUNK)
            head = buffered.peek(4096)
            content_type = response.headers.get("Content-Type", "").lower()
            if "html" in content_type or looks_like_html(head[:4096]):
                raise HtmlResponse(
                    f"Finale answered the {what} with a web page instead of CSV (usually its login page)",
                    status=response.status_code,
                    excerpt=_html_excerpt(head),
                )
            if not head.strip(codecs.BOM_UTF8 + b" \r\n\t"):
                raise EmptyData(
                    f"Finale returned an empty {what} (no header, no rows)", status=response.status_code
                )
            text = io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")
            yield self._rows(text, what)
        finally:
            response.close()

    @contextmanager
    def open_report(self, url: str, *, what: str = "report"):
        """Stream a report body as a binary file-like object (temporary: the hardened version replaces it)."""
        response = self._get(self.resolve(url), what=what)
        try:
            raw = _CappedRaw(response, max_bytes=self.max_bytes, what=what)
            buffered = io.BufferedReader(raw, buffer_size=CHUNK)
            head = buffered.peek(4096)
            content_type = response.headers.get("Content-Type", "").lower()
            if "html" in content_type or looks_like_html(head[:4096]):
                raise HtmlResponse(
                    f"Finale answered the {what} with a web page instead of CSV (usually its login page)",
                    status=response.status_code,
                    excerpt=_html_excerpt(head),
                )
            if not head.strip(codecs.BOM_UTF8 + b" \r\n\t"):
                raise EmptyData(
                    f"Finale returned an empty {what} (no header, no rows)", status=response.status_code
                )
            buffered.end_verified = True
            yield buffered
        finally:
            response.close()

    def _rows(self, text: io.TextIOBase, what: str) -> Iterator[list[str]]:
        lines = _Lines(text, what)
        reader = csv.reader(lines)
        previous_width = None
        row = None
        try:
            for row in reader:
                record_text = "".join(lines.current)
                lines.current = []
                if not record_text.endswith(("\n", "\r")):
                    # Only the very last record can lack a line end: check it was not cut off.
                    if record_text.count('"') % 2 or (previous_width and len(row) < previous_width):
                        raise TruncatedResponse(
                            f"The {what} ends in the middle of a row: the transfer was cut short",
                            excerpt=record_text[-80:],
                        )
                previous_width = len(row) if any(row) else previous_width
                yield row
        except csv.Error as exc:
            raise MalformedData(f"The {what} is not valid CSV near line {reader.line_num}: {exc}") from None

    def order_collection(self, *, order_type: str = "PURCHASE_ORDER") -> dict:
        """GET the order collection (column-major JSON), asking Finale for `order_type` only. Finale's type
        filter is unreliable, so callers filter again. Raises the usual errors and MalformedData for JSON
        that is not an object."""
        what = "order collection"
        flt = base64.b64encode(json.dumps({"orderTypeId": [order_type, order_type]}).encode()).decode()
        response = self._get(self.account_url("api/order/"), what=what, params={"filter": flt})
        try:
            raw = _CappedRaw(response, max_bytes=self.max_bytes, what=what)
            body = io.BufferedReader(raw, buffer_size=CHUNK).read()
        finally:
            response.close()
        if looks_like_html(body[:4096]) or "html" in response.headers.get("Content-Type", "").lower():
            raise HtmlResponse(
                f"Finale answered the {what} with a web page instead of JSON", excerpt=_html_excerpt(body)
            )
        if not body.strip():
            raise EmptyData(f"Finale returned an empty {what}")
        try:
            decoded = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedData(
                f"The {what} is not valid JSON: {exc}", excerpt=body[:120].decode("utf-8", "replace")
            ) from None
        if not isinstance(decoded, dict):
            raise MalformedData(
                f"The {what} is a JSON {type(decoded).__name__}, expected an object of arrays"
            )
        return decoded


def _html_excerpt(head: bytes) -> str:
    text = head[:2048].decode("utf-8", "replace")
    import re

    title = re.search(r"(?is)<title>(.*?)</title>", text)
    return ("<title>" + title.group(1).strip() + "</title>") if title else " ".join(text.split())[:120]
