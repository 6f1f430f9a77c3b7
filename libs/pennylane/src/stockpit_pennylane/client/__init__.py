"""Async client for Pennylane's Company API v2: see `PennylaneClient`."""

from stockpit_pennylane.client.client import (
    API_CHANGES_HEADER,
    DEFAULT_BASE_URL,
    INCLUDED_LINES_LIMIT,
    MAX_CHANGELOG_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ChangelogResource,
    PennylaneClient,
    shared_http_client,
)
from stockpit_pennylane.client.errors import (
    AmbiguousWriteError,
    BadRequest,
    ChangelogExpired,
    Conflict,
    Forbidden,
    NotFound,
    PennylaneError,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    UnexpectedStatus,
    Unprocessable,
)
from stockpit_pennylane.client.filters import Condition, Filter, Operator
from stockpit_pennylane.client.ratelimit import PENNYLANE_RATE_LIMIT, RateLimit
from stockpit_pennylane.client.transport import ClientMetrics, RequestRecord, RetryPolicy

__all__ = [
    "API_CHANGES_HEADER",
    "DEFAULT_BASE_URL",
    "INCLUDED_LINES_LIMIT",
    "MAX_CHANGELOG_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "PENNYLANE_RATE_LIMIT",
    "AmbiguousWriteError",
    "BadRequest",
    "ChangelogExpired",
    "ChangelogResource",
    "ClientMetrics",
    "Condition",
    "Conflict",
    "Filter",
    "Forbidden",
    "NotFound",
    "Operator",
    "PennylaneClient",
    "PennylaneError",
    "RateLimit",
    "RateLimited",
    "RequestRecord",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "UnexpectedStatus",
    "Unprocessable",
    "shared_http_client",
]
