"""Typed errors raised by the Pennylane client.

None of them ever holds the API token: they carry the method, the path (never the query string,
which a caller could have filled with anything), the status and what the error body said.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

_MAX_MESSAGE = 500


class PennylaneError(Exception):
    """Base of every error the client raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        code: str | None = None,
        field: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.code = code
        self.field = field
        self.details = details

    def __str__(self) -> str:
        where = f"{self.method} {self.path}".strip()
        status = f" -> {self.status}" if self.status is not None else ""
        code = f" [{self.code}]" if self.code else ""
        return f"{where}{status}{code}: {self.message}" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class BadRequest(PennylaneError):
    """400: malformed request (bad filter, invalid cursor, out-of-range limit, schema error)."""


class Unauthorized(PennylaneError):
    """401: the token is unknown, revoked or expired."""


class Forbidden(PennylaneError):
    """403: the token lacks the scope for this operation."""


class NotFound(PennylaneError):
    """404: no such record for this company (another company's record also gives 404)."""


class Conflict(PennylaneError):
    """409: the resource already exists (duplicate customer, supplier, re-imported file…)."""


class Unprocessable(PennylaneError):
    """422: a business rule refused the request."""


class ChangelogExpired(Unprocessable):
    """A changelog `start_date` older than Pennylane's ~4-week retention.

    Changes between the stored watermark and the retention horizon are lost: the caller must do a
    full re-scan of the resource (list every record) and then resume the changelog from the time the
    re-scan started. The client never skips silently to the oldest retained change.
    """

    def __init__(self, message: str, *, start_date: dt.datetime, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.start_date = start_date


class RateLimited(PennylaneError):
    """429 still received after the client's bounded number of waits."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(PennylaneError):
    """5xx still received after the client's bounded retries (reads and idempotent writes)."""


class UnexpectedStatus(PennylaneError):
    """A status the API does not document for this client (e.g. 405, 413, 3xx)."""


class TransportError(PennylaneError):
    """Timeout or connection failure still happening after the bounded retries."""


class AmbiguousWriteError(PennylaneError):
    """A non-idempotent write failed in a way that may still have been applied.

    Raised instead of retrying when a POST (or a non-idempotent PUT) timed out after being sent,
    lost its connection, or got a 5xx. Pennylane has no idempotency key, so the caller must look
    the record up (by `external_reference`) before trying again. `status` is None for transport
    failures.
    """


_STATUS_ERRORS: dict[int, type[PennylaneError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    429: RateLimited,
}


def error_class_for(status: int) -> type[PennylaneError]:
    if status in _STATUS_ERRORS:
        return _STATUS_ERRORS[status]
    if status >= 500:
        return ServerError
    return UnexpectedStatus


def parse_error_body(body: bytes) -> tuple[str, str | None, str | None, Any]:
    """(message, code, field, details) from Pennylane's loosely shaped error bodies.

    Seen shapes: `{"error": msg, "status": n}` (spec), `{"error": code, "message": msg,
    "details": {...}}` (errors guide), `{"message", "code", "field", "payload"}` (400 schema
    errors), and plain text (429).
    """
    text = body.decode("utf-8", errors="replace").strip()
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return (text[:_MAX_MESSAGE] or "(empty body)", None, None, None)
    error = parsed.get("error")
    message = parsed.get("message")
    code = parsed.get("code")
    if isinstance(message, str) and message:
        # With both present, `error` is a machine code such as "unprocessable_entity".
        if code is None and isinstance(error, str):
            code = error
        text_message = message
    elif isinstance(error, str) and error:
        text_message = error
    else:
        text_message = json.dumps(parsed)[:_MAX_MESSAGE]
    field = parsed.get("field")
    return (
        text_message[:_MAX_MESSAGE],
        code if isinstance(code, str) else None,
        field if isinstance(field, str) else None,
        parsed.get("details"),
    )
