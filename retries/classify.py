"""Is a failure worth retrying automatically?

Typed exceptions (finalesync.errors) decide first. Anything else falls back to the original system's message
patterns, without its mistakes: a number such as '500 rows' is not a server error, a 4xx other than 429 is
never recoverable, a TLS certificate failure is not transient, and anything unknown is not retried.
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass

import requests

from finalesync import errors


@dataclass(frozen=True)
class Classification:
    code: str
    recoverable: bool


_HTTP_STATUS = re.compile(
    r"(?i)(?:\bhttp(?:\s*status)?\s*(?:code\s*)?[:=]?\s*|\bstatus(?:\s*code)?\s*[:=]?\s*|\b)"
    r"([1-5]\d\d)\b(?=\s*(?:\)|$|[,;:.]|\s+(?:error|internal|bad|service|gateway|too|unauthori[sz]ed|"
    r"forbidden|not\s+found|payment|server|timeout|client)))"
)
_NON_RECOVERABLE = [
    (
        "tls",
        re.compile(
            r"(?i)certificate\s+verify\s+failed|certificate_verify_failed|self[- ]signed certificate|"
            r"hostname .* doesn't match|certificate has expired"
        ),
    ),
    ("empty_data", re.compile(r"(?i)empty.*data|no data rows|header only")),
    (
        "auth",
        re.compile(r"(?i)invalid.*credentials|unauthori[sz]ed|forbidden|authentication failed|login page"),
    ),
    (
        "schema_error",
        re.compile(r"(?i)schema.*error|missing (?:required )?columns?|required columns? missing"),
    ),
    ("malformed_data", re.compile(r"(?i)malformed.*data|invalid json|not valid csv")),
]
_RECOVERABLE = [
    ("rate_limited", re.compile(r"(?i)rate.?limit|too many requests")),
    ("timeout", re.compile(r"(?i)gateway timeout|timed?\s*out|timeout")),
    (
        "network",
        re.compile(
            r"(?i)network|connection (?:reset|refused|aborted|error|broken)|broken pipe|"
            r"econnreset|econnrefused|remote end closed|temporary failure in name resolution|"
            r"name or service not known|getaddrinfo|\bdns\b|nodename nor servname"
        ),
    ),
    ("network", re.compile(r"(?i)ssl handshake|handshake (?:failure|timed out)")),
    ("server_error", re.compile(r"(?i)service unavailable|bad gateway|internal server error")),
]


def status_classification(status: int) -> Classification:
    if status == 429:
        return Classification("rate_limited", True)
    if 500 <= status <= 599:
        return Classification("server_error", True)
    if status in (401, 402, 403):
        return Classification("auth", False)
    if status == 404:
        return Classification("not_found", False)
    return Classification("bad_request" if 400 <= status < 500 else "unknown", False)


def classify(exc: BaseException | str) -> Classification:
    """The retry decision for an exception (or a bare message): typed first, then message patterns."""
    if isinstance(exc, errors.FinaleError):
        return Classification(exc.code, exc.recoverable)
    if isinstance(exc, BaseException):
        typed = _by_type(exc)
        if typed is not None:
            return typed
        message = f"{type(exc).__name__}: {exc}"
    else:
        message = str(exc)
    return classify_message(message)


def _by_type(exc: BaseException) -> Classification | None:
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(exc, ssl.SSLCertVerificationError):
        text = str(exc).lower()
        if isinstance(exc, ssl.SSLCertVerificationError) or "certificate verify failed" in text:
            return Classification("tls", False)
        return Classification("network", True)
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return status_classification(exc.response.status_code)
    if isinstance(exc, (requests.exceptions.Timeout, TimeoutError, socket.timeout)):
        return Classification("timeout", True)
    if isinstance(exc, socket.gaierror):
        return Classification("network", True)
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError)):
        return Classification("network", True)
    if isinstance(exc, (UnicodeDecodeError,)):
        return Classification("malformed_data", False)
    return None


def classify_message(message: str) -> Classification:
    """The fallback for unknown exceptions: the original system's patterns, fixed."""
    for code, pattern in _NON_RECOVERABLE:
        if pattern.search(message):
            return Classification(code, False)
    match = _HTTP_STATUS.search(message)
    if match:
        return status_classification(int(match.group(1)))
    for code, pattern in _RECOVERABLE:
        if pattern.search(message):
            return Classification(code, True)
    return Classification("unknown", False)
