"""Typed failures of a sync. The type carries the classification; the message is for people.

Every FinaleError knows whether it is `recoverable` (worth an automatic retry) and a short `code` that is stored
with failure logs and retries. Messages are redacted when the error is created, so whatever stores or shows one
cannot leak a secret.
"""

from __future__ import annotations

from .redact import redact


class FinaleError(Exception):
    """Base of every classified sync failure."""

    code = "error"
    recoverable = False
    # What the operator should do about it; shown on the dashboard and in alerts.
    advice = "Look at the error and the report in Finale."

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        excerpt: str = "",
        details=None,
        advice: str | None = None,
    ):
        self.message = redact(message)
        self.status = status
        self.excerpt = redact(excerpt)[:300]
        self.details = details or {}
        if advice is not None:
            # One class can need a more precise next step than its default (which setting to raise, say).
            self.advice = redact(advice)
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None and f"HTTP {self.status}" not in self.message:
            parts.append(f"(HTTP {self.status})")
        if self.excerpt:
            parts.append(f"— Finale answered: {self.excerpt!r}")
        return " ".join(parts)


# --- recoverable ---------------------------------------------------------------------------------------------
class NetworkError(FinaleError):
    code = "network"
    recoverable = True
    advice = "Temporary network failure; a retry is queued."


class FinaleTimeout(NetworkError):
    code = "timeout"


class TruncatedResponse(NetworkError):
    """The body ended in the middle of a row or quoted field: the transfer was cut."""

    code = "truncated"


class RateLimited(FinaleError):
    code = "rate_limited"
    recoverable = True
    advice = "Finale asked us to slow down; the retry waits at least as long as it said."

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(FinaleError):
    code = "server_error"
    recoverable = True
    advice = "Finale had a server-side failure; a retry is queued."


# --- not recoverable: needs a person -------------------------------------------------------------------------
class AuthError(FinaleError):
    code = "auth"
    advice = "Check the API key and secret in the admin (Finale → Settings → API keys), then resume the type."


class PermissionDenied(AuthError):
    """HTTP 403: the key is valid but its user may not read this. Same code as AuthError, so everything that
    treats credential failures alike still does; the advice differs because new credentials would not help."""

    advice = (
        "This API user may not read that report: check its permissions in Finale (the API user's role), "
        "then resume the type."
    )


class ForeignRedirect(FinaleError):
    """Finale (or something in front of it) answered with a redirect to another origin. Following it would
    send the API credentials, or apply data, from a host that is not FINALE_BASE_URL."""

    code = "foreign_redirect"
    advice = (
        "Finale redirected to another host, which finalesync never follows. If Finale's address really "
        "changed, set FINALE_BASE_URL to it; otherwise copy a fresh report URL from Finale."
    )


class NotFound(FinaleError):
    code = "not_found"
    advice = "Check the account name and the report URL; the report may have been deleted in Finale."


class BadRequest(FinaleError):
    code = "bad_request"
    advice = "Finale refused the request as invalid; check the report URL or filter."


class HtmlResponse(FinaleError):
    code = "html_response"
    advice = (
        "Finale answered with a web page (usually its login page): the credentials or report URL are invalid."
    )


class TlsError(FinaleError):
    code = "tls"
    advice = (
        "The TLS certificate could not be verified: check FINALE_BASE_URL and the machine's CA certificates."
    )


class ConfigurationError(FinaleError):
    code = "configuration"
    advice = "Set the missing setting (environment or admin) and resume the type."


class ResponseTooLarge(FinaleError):
    code = "too_large"
    advice = "The response is bigger than FINALE_MAX_RESPONSE_BYTES; raise the cap or narrow the report."


class DataError(FinaleError):
    """The response arrived but cannot be used as data. Nothing is applied."""

    code = "data_error"
    advice = "The previous data was kept. Check the report in Finale."


class EmptyData(DataError):
    code = "empty_data"
    advice = (
        "Finale returned no rows; the previous data was kept. An expired report URL often does this: "
        "copy a fresh export URL from Finale into the admin, then run a forced sync."
    )


class SchemaError(DataError):
    code = "schema_error"
    advice = "The report lacks a required column; add it to the report in Finale (or fix the URL)."


class MalformedData(DataError):
    code = "malformed_data"
    advice = "Too many rows could not be read; the previous data was kept. Check the report in Finale."


class LineTooLong(MalformedData):
    """One physical line of a report is longer than FINALE_MAX_LINE_BYTES: no real report has such a line,
    and reading it on would only fill memory."""

    code = "line_too_long"
    advice = (
        "A line of the report is longer than FINALE_MAX_LINE_BYTES; the previous data was kept. Check the "
        "report in Finale (a runaway column or a broken export); raise the limit only if the line is real."
    )


class SuspiciousDrop(DataError):
    code = "suspicious_drop"
    advice = (
        "The new data would remove more rows than the configured maximum drop; nothing was applied. "
        "If the drop is real, review and apply it once: the dashboard's 'Review and apply…' or `runsync TYPE --confirm`."
    )


class VerificationFailed(DataError):
    code = "verification_failed"
    advice = "The applied rows did not match what was parsed; the change was rolled back."


class SuspiciousChange(DataError):
    """The new data would change far more than usual (a column emptied in most rows, most rows changed, a
    drop that an unverifiable transfer cannot vouch for). Refused like a suspicious drop."""

    code = "suspicious_change"
    advice = (
        "The new data would change far more than usual; nothing was applied. If the change is real, review "
        "and apply it once: the dashboard's 'Review and apply…' or `runsync TYPE --confirm`."
    )


class LostLock(FinaleError):
    """Another worker took over this type's lock (the lease expired): this run must not apply anything."""

    code = "lost_lock"
    recoverable = True
    advice = "Another worker took over this type; its run is the one that counts. Nothing was applied here."


class DatabaseProblem(FinaleError):
    """Our own database failed (connection lost, lock timeout, deadlock): worth another try."""

    code = "database"
    recoverable = True
    advice = (
        "finalesync's own database failed; nothing was changed and a retry is queued. See the server log."
    )


class InternalError(FinaleError):
    """A failure nobody foresaw (a bug). Not retried: the same input would fail the same way."""

    code = "internal"
    advice = (
        "An unexpected error inside finalesync; the previous data was kept. The traceback is in the server "
        "log: report it, then resume the type."
    )


class UnknownError(InternalError):
    """An exception nobody typed and no message pattern recognised."""

    code = "unknown"


def for_status(status: int) -> type[FinaleError]:
    """The typed error an HTTP status means: 401/402 bad credentials or plan, 403 permission, 404 not found,
    429 rate limited, 5xx Finale's own failure, any other answer a refused request. The one map of statuses:
    the client and the classification of untyped exceptions both use it."""
    if status == 429:
        return RateLimited
    if 500 <= status <= 599:
        return ServerError
    return {401: AuthError, 402: AuthError, 403: PermissionDenied, 404: NotFound}.get(status, BadRequest)


def advice_for(code: str) -> str:
    """What a person should do about a failure with error `code` (its typed error's advice)."""
    pending = [FinaleError]
    while pending:
        kind = pending.pop()
        if kind.code == code:
            return kind.advice
        pending.extend(kind.__subclasses__())
    return FinaleError.advice
