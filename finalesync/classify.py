"""The one map from an exception to a typed failure: its error code and whether it is worth retrying.

Typed exceptions decide first (finalesync/errors.py: every FinaleError carries `code` and `recoverable`);
network and TLS exceptions are typed by the client (`client.translate`); errors of our own database are typed
here. Only an exception nobody typed falls back to the original system's message patterns, without its
mistakes: a number such as '500 rows' is not a server error, a 4xx other than 429 is never recoverable, a TLS
certificate failure is not transient, and anything unknown is not retried: it waits for a person.
"""

from __future__ import annotations

import re

import requests
import urllib3
from django.db import DatabaseError, InterfaceError, OperationalError

from . import errors

_HTTP_STATUS = re.compile(
    r"(?i)(?:\bhttp(?:\s*status)?\s*(?:code\s*)?[:=]?\s*|\bstatus(?:\s*code)?\s*[:=]?\s*|\b)"
    r"([1-5]\d\d)\b(?=\s*(?:\)|$|[,;:.]|\s+(?:error|internal|bad|service|gateway|too|unauthori[sz]ed|"
    r"forbidden|not\s+found|payment|server|timeout|client)))"
)
# code → the typed error a message of that kind becomes.
_NON_RECOVERABLE = [
    (
        errors.TlsError,
        re.compile(
            r"(?i)certificate\s+verify\s+failed|certificate_verify_failed|self[- ]signed certificate|"
            r"hostname .* doesn't match|certificate has expired"
        ),
    ),
    (errors.EmptyData, re.compile(r"(?i)empty.*data|no data rows|header only")),
    (
        errors.AuthError,
        re.compile(r"(?i)invalid.*credentials|unauthori[sz]ed|forbidden|authentication failed|login page"),
    ),
    (
        errors.SchemaError,
        re.compile(r"(?i)schema.*error|missing (?:required )?columns?|required columns? missing"),
    ),
    (errors.MalformedData, re.compile(r"(?i)malformed.*data|invalid json|not valid csv")),
]
_RECOVERABLE = [
    (errors.RateLimited, re.compile(r"(?i)rate.?limit|too many requests")),
    (errors.FinaleTimeout, re.compile(r"(?i)gateway timeout|timed?\s*out|timeout")),
    (
        errors.NetworkError,
        re.compile(
            r"(?i)network|connection (?:reset|refused|aborted|error|broken)|broken pipe|"
            r"econnreset|econnrefused|remote end closed|temporary failure in name resolution|"
            r"name or service not known|getaddrinfo|\bdns\b|nodename nor servname"
        ),
    ),
    (errors.NetworkError, re.compile(r"(?i)ssl handshake|handshake (?:failure|timed out)")),
    (errors.ServerError, re.compile(r"(?i)service unavailable|bad gateway|internal server error")),
]


def to_error(exc: BaseException | str) -> errors.FinaleError:
    """`exc` (or a bare message) as the typed failure it means. Never raises; the message of an untyped
    exception is redacted and kept to one line without SQL or table names."""
    if isinstance(exc, str):
        return classify_message(exc)
    if isinstance(exc, errors.FinaleError):
        return exc
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return errors.for_status(exc.response.status_code)(_first_line(exc), status=exc.response.status_code)
    if isinstance(exc, (requests.RequestException, urllib3.exceptions.HTTPError, OSError)):
        from .client import translate

        return translate(exc, what="request")
    if isinstance(exc, (OperationalError, InterfaceError)):
        return errors.DatabaseProblem(
            f"finalesync's database failed during the sync ({type(exc).__name__}: {_first_line(exc)})"
        )
    if isinstance(exc, DatabaseError):
        # IntegrityError, DataError, ProgrammingError: the database refused what we sent — our bug.
        return errors.InternalError(f"finalesync's database refused a statement ({type(exc).__name__})")
    if isinstance(exc, UnicodeDecodeError):
        return errors.MalformedData(f"The response is not UTF-8 text ({exc.reason} at byte {exc.start})")
    return classify_message(f"{type(exc).__name__}: {_first_line(exc)}")


def classify_message(message: str) -> errors.FinaleError:
    """The fallback for exceptions nobody typed: the original system's message patterns, fixed."""
    for kind, pattern in _NON_RECOVERABLE:
        if pattern.search(message):
            return kind(message)
    match = _HTTP_STATUS.search(message)
    if match:
        return errors.for_status(int(match.group(1)))(message)
    for kind, pattern in _RECOVERABLE:
        if pattern.search(message):
            return kind(message)
    return errors.UnknownError(message)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's text: database messages continue with the statement and context."""
    return (str(exc).strip().splitlines() or [""])[0][:300]
