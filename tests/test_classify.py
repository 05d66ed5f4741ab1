"""Retry decisions, table-driven: typed exceptions first, then the original system's message patterns — fixed."""

import socket
import ssl

import pytest
import requests

from finalesync import errors
from finalesync.classify import to_error as classify


def http_error(status):
    response = requests.Response()
    response.status_code = status
    return requests.exceptions.HTTPError(f"{status} Client Error", response=response)


CASES = [
    # typed errors of our own client
    (errors.NetworkError("x"), "network", True),
    (errors.FinaleTimeout("x"), "timeout", True),
    (errors.TruncatedResponse("x"), "truncated", True),
    (errors.RateLimited("x", retry_after=30), "rate_limited", True),
    (errors.ServerError("x", status=503), "server_error", True),
    (errors.AuthError("x", status=401), "auth", False),
    (errors.NotFound("x"), "not_found", False),
    (errors.BadRequest("x"), "bad_request", False),
    (errors.HtmlResponse("x"), "html_response", False),
    (errors.TlsError("x"), "tls", False),
    (errors.EmptyData("x"), "empty_data", False),
    (errors.SchemaError("x"), "schema_error", False),
    (errors.MalformedData("x"), "malformed_data", False),
    (errors.SuspiciousDrop("x"), "suspicious_drop", False),
    (errors.ConfigurationError("x"), "configuration", False),
    (errors.ResponseTooLarge("x"), "too_large", False),
    # library exceptions, by type
    (requests.exceptions.ConnectTimeout("boom"), "timeout", True),
    (requests.exceptions.ReadTimeout("boom"), "timeout", True),
    (requests.exceptions.ConnectionError("boom"), "network", True),
    (ConnectionResetError(104, "Connection reset by peer"), "network", True),
    (ConnectionRefusedError(111, "refused"), "network", True),
    (socket.gaierror(-2, "Name or service not known"), "network", True),
    (TimeoutError("boom"), "timeout", True),
    (requests.exceptions.SSLError("certificate verify failed: unable to get local issuer"), "tls", False),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), "tls", False),
    (requests.exceptions.SSLError("EOF occurred in violation of protocol (_ssl.c:2427)"), "network", True),
    (http_error(429), "rate_limited", True),
    (http_error(500), "server_error", True),
    (http_error(503), "server_error", True),
    (http_error(401), "auth", False),
    (http_error(403), "auth", False),
    (http_error(404), "not_found", False),
    (http_error(400), "bad_request", False),
    (http_error(409), "bad_request", False),
    # unknown exceptions: message patterns of the original, without its mistakes
    (RuntimeError("network unreachable"), "network", True),
    (RuntimeError("Gateway Timeout from upstream"), "timeout", True),
    (RuntimeError("operation timed out after 30s"), "timeout", True),
    (RuntimeError("rate limit exceeded"), "rate_limited", True),
    (RuntimeError("HTTP 502 Bad Gateway"), "server_error", True),
    (RuntimeError("status: 504"), "server_error", True),
    (RuntimeError("DNS lookup failed"), "network", True),
    (RuntimeError("SSL handshake timed out"), "timeout", True),
    (RuntimeError("Service Unavailable"), "server_error", True),
    (RuntimeError("imported 500 rows"), "unknown", False),  # a number is not a status
    (RuntimeError("order 503 not in stock"), "unknown", False),
    (RuntimeError("HTTP 404 Not Found"), "not_found", False),  # 4xx never recoverable
    (RuntimeError("status code 400"), "bad_request", False),
    (RuntimeError("HTTP 429 Too Many Requests"), "rate_limited", True),
    (RuntimeError("certificate verify failed"), "tls", False),  # not "ssl → retry"
    (RuntimeError("connection to 127.0.0.1 failed: certificate verify failed"), "tls", False),
    (RuntimeError("empty data from report"), "empty_data", False),
    (RuntimeError("Invalid credentials"), "auth", False),
    (RuntimeError("401 Unauthorized"), "auth", False),
    (RuntimeError("schema error: column missing"), "schema_error", False),
    (RuntimeError("malformed data in row 7"), "malformed_data", False),
    (RuntimeError("something odd happened"), "unknown", False),  # unknown is not retried
    (ValueError("invalid literal for int()"), "unknown", False),
    (KeyError("sku"), "unknown", False),
    ("connection reset by peer", "network", True),  # a bare message
]


@pytest.mark.parametrize("exc, code, recoverable", CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)])
def test_classification(exc, code, recoverable):
    result = classify(exc)
    assert (result.code, result.recoverable) == (code, recoverable)


def test_database_errors_are_typed_without_sql_and_a_lost_connection_is_retried():
    from django.db import IntegrityError, OperationalError

    lost = classify(OperationalError("server closed the connection unexpectedly\nThis probably means..."))
    assert (lost.code, lost.recoverable) == ("database", True)
    assert "\n" not in str(lost)
    refused = classify(
        IntegrityError('duplicate key value violates unique constraint "x"\nDETAIL: Key (natural_key)')
    )
    assert (refused.code, refused.recoverable) == ("internal", False)
    assert "natural_key" not in str(refused) and "constraint" not in str(refused)


def test_table_is_big_enough():
    assert len(CASES) >= 40
