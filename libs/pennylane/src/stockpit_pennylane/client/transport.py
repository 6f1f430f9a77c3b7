"""One Pennylane request: pacing, retries, error mapping and counters.

Retry policy (Pennylane's errors guide: retry 429, 500, 503; never 400, 401, 403, 404, 422):
- 429: wait `retry-after` (for every client sharing the token), then resend; bounded.
- 5xx, timeouts and connection errors: jittered exponential backoff, bounded, for reads and
  idempotent writes.
- Non-idempotent writes (POST, invoice PUT): a failure that may have reached Pennylane (timeout
  after sending, dropped connection, 5xx) raises `AmbiguousWriteError` instead of resending,
  because Pennylane has no idempotency key. Only failures that prove nothing was sent (connect
  errors, pool timeouts, 429) are retried. `retry_ambiguous_writes=True` overrides this for callers
  that accept duplicates.
- Any other 4xx raises its typed error at once."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from stockpit_pennylane.client.errors import (
    AmbiguousWriteError,
    PennylaneError,
    RateLimited,
    TransportError,
    error_class_for,
    parse_error_body,
)
from stockpit_pennylane.client.ratelimit import ClientBudget

log = logging.getLogger("stockpit_pennylane.client")

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
# Failures that prove the request never reached the server: safe to resend even for a POST.
_NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
_RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    # Attempts for 5xx / transport failures (first try included).
    max_attempts: int = 5
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    # Times a 429 is waited out before RateLimited is raised.
    max_rate_limited_waits: int = 10
    # Used when a 429 has no usable retry-after.
    default_retry_after_s: float = 5.0

    def backoff(self, failed_attempts: int) -> float:
        """Equal-jitter exponential backoff: between half and all of the capped delay."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (failed_attempts - 1)))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What the metrics hook sees for every attempt; `status` is None on a transport failure."""

    method: str
    path: str
    status: int | None
    attempt: int
    elapsed_s: float


@dataclass(slots=True)
class ClientMetrics:
    """Per-client counters for Prometheus exporters (read them, or pass an `on_request` hook)."""

    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    failures: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


RequestHook = Callable[[RequestRecord], None]


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _seconds_until_reset(value: str | None, cap: float) -> float | None:
    """`ratelimit-reset` is documented as a Unix timestamp; small values are read as seconds."""
    if not value:
        return None
    try:
        reset = float(value)
    except ValueError:
        return None
    seconds = reset - time.time() if reset > 1_000_000_000 else reset
    return min(max(0.0, seconds), cap)


class PennylaneTransport:
    def __init__(
        self,
        http: httpx.AsyncClient,
        budget: ClientBudget,
        *,
        retry_policy: RetryPolicy,
        retry_ambiguous_writes: bool,
        metrics: ClientMetrics,
        on_request: RequestHook | None,
        url_prefix: str = "",
        headers: Mapping[str, str] | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> None:
        self._http = http
        # A shared pool (see `shared_http_client`) has no base URL and no token of its own: each
        # request carries its client's absolute URL and Authorization header.
        self._url_prefix = url_prefix
        self._headers = headers
        self._before_send = before_send
        self._budget = budget
        self._policy = retry_policy
        self._retry_ambiguous_writes = retry_ambiguous_writes
        self.metrics = metrics
        self._on_request = on_request

    def _record(self, method: str, path: str, status: int | None, attempt: int, t0: float) -> None:
        self.metrics.requests += 1
        if status is not None:
            self.metrics.by_status[status] = self.metrics.by_status.get(status, 0) + 1
        if status == 429:
            self.metrics.rate_limited += 1
        if self._on_request is not None:
            self._on_request(RequestRecord(method, path, status, attempt, time.monotonic() - t0))

    def _observe_rate_headers(self, response: httpx.Response) -> None:
        if response.headers.get("ratelimit-remaining") != "0":
            return
        window = self._budget.window
        wait = _seconds_until_reset(
            response.headers.get("ratelimit-reset"), cap=window.limit.paced_window_s
        )
        if wait:
            window.block_for(wait)

    async def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        files: Any = None,
        data: Any = None,
    ) -> httpx.Response:
        failed_attempts = 0
        rate_limited_waits = 0
        attempt = 0
        may_retry_ambiguous = idempotent or self._retry_ambiguous_writes
        while True:
            attempt += 1
            await self._budget.acquire()
            if self._before_send is not None:
                self._before_send()
            t0 = time.monotonic()
            try:
                response = await self._http.request(
                    method,
                    self._url_prefix + path,
                    params=params,
                    json=json,
                    files=files,
                    data=data,
                    headers=self._headers,
                )
            except _RETRYABLE_TRANSPORT_ERRORS as exc:
                self._record(method, path, None, attempt, t0)
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                never_sent = isinstance(exc, _NOT_SENT_ERRORS)
                if not never_sent and not may_retry_ambiguous:
                    self.metrics.failures += 1
                    # `from None`: the httpx exception holds the request and its headers.
                    raise AmbiguousWriteError(
                        f"may have been applied ({reason}); look it up before retrying",
                        method=method,
                        path=path,
                    ) from None
                failed_attempts += 1
                if failed_attempts >= self._policy.max_attempts:
                    self.metrics.failures += 1
                    raise TransportError(
                        f"gave up after {failed_attempts} attempts ({reason})",
                        method=method,
                        path=path,
                    ) from None
                delay = self._policy.backoff(failed_attempts)
                log.warning(
                    "pennylane %s %s failed (%s), retry in %.2fs", method, path, reason, delay
                )
                self.metrics.retries += 1
                await asyncio.sleep(delay)
                continue

            status = response.status_code
            self._record(method, path, status, attempt, t0)
            self._observe_rate_headers(response)
            if status < 300:
                return response
            if status == 429:
                retry_after = _parse_retry_after(response.headers.get("retry-after"))
                wait = (
                    retry_after if retry_after is not None else self._policy.default_retry_after_s
                )
                self._budget.window.block_for(wait)
                rate_limited_waits += 1
                if rate_limited_waits > self._policy.max_rate_limited_waits:
                    self.metrics.failures += 1
                    raise self._error(response, method, path, retry_after=retry_after)
                log.info("pennylane %s %s rate limited, waiting %.2fs", method, path, wait)
                self.metrics.retries += 1
                continue
            if status in RETRYABLE_STATUSES:
                if not may_retry_ambiguous:
                    self.metrics.failures += 1
                    message, code, _field, details = parse_error_body(response.content)
                    raise AmbiguousWriteError(
                        f"may have been applied ({message}); look it up before retrying",
                        status=status,
                        method=method,
                        path=path,
                        code=code,
                        details=details,
                    )
                failed_attempts += 1
                if failed_attempts >= self._policy.max_attempts:
                    self.metrics.failures += 1
                    raise self._error(response, method, path)
                delay = self._policy.backoff(failed_attempts)
                log.warning("pennylane %s %s -> %d, retry in %.2fs", method, path, status, delay)
                self.metrics.retries += 1
                await asyncio.sleep(delay)
                continue
            self.metrics.failures += 1
            raise self._error(response, method, path)

    @staticmethod
    def _error(
        response: httpx.Response, method: str, path: str, *, retry_after: float | None = None
    ) -> PennylaneError:
        message, code, field_name, details = parse_error_body(response.content)
        status = response.status_code
        error_class = error_class_for(status)
        if error_class is RateLimited:
            return RateLimited(
                message,
                retry_after=retry_after,
                status=status,
                method=method,
                path=path,
                code=code,
                field=field_name,
                details=details,
            )
        return error_class(
            message,
            status=status,
            method=method,
            path=path,
            code=code,
            field=field_name,
            details=details,
        )
