"""Pennylane's per-token rate limit (25 requests per 5 s) and a log of every API request."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # Unix time at which a slot frees up (the `ratelimit-reset` header)
    retry_after: int  # whole seconds to wait (the `retry-after` header on a 429)

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_at).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        return headers


class RateLimiter:
    """A sliding-window log per token.

    Pennylane documents a 5 s window with a reset time; a sliding window is at least as strict
    as a fixed one, so a client that never sees a 429 here keeps any 5 s span within the limit.
    """

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._admitted: dict[str, deque[float]] = {}

    def configure(self, limit: int, window_seconds: float) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("the limit must be >= 1 and the window > 0")
        self.limit = limit
        self.window_seconds = window_seconds

    def admit(self, token: str, monotonic_now: float, wall_now: float) -> Decision:
        admitted = self._admitted.setdefault(token, deque())
        while admitted and admitted[0] <= monotonic_now - self.window_seconds:
            admitted.popleft()
        allowed = len(admitted) < self.limit
        if allowed:
            admitted.append(monotonic_now)
        frees_in = admitted[0] + self.window_seconds - monotonic_now if admitted else 0.0
        return Decision(
            allowed=allowed,
            limit=self.limit,
            remaining=max(self.limit - len(admitted), 0),
            reset_at=math.ceil(wall_now + frees_in),
            retry_after=max(math.ceil(frees_in), 1),
        )


@dataclass(frozen=True)
class RequestLogEntry:
    at: float  # Unix time the request arrived
    monotonic: float  # same instant on the monotonic clock, for window arithmetic
    method: str
    path: str
    status: int  # 0 when the connection was dropped without a response
    outcome: str  # ok | rate_limited | fault_429 | fault_500 | fault_503 | dropped | revoked

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def max_in_window(moments: list[float], window_seconds: float) -> int:
    """The largest number of moments inside any half-open span of `window_seconds`."""
    ordered = sorted(moments)
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window_seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


class RequestLog:
    """Every API request per token, oldest first, bounded by `capacity` per token."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: dict[str, deque[RequestLogEntry]] = {}

    def add(self, token: str, entry: RequestLogEntry) -> None:
        self._entries.setdefault(token, deque(maxlen=self.capacity)).append(entry)

    def entries(self, token: str) -> list[RequestLogEntry]:
        return list(self._entries.get(token, ()))

    def clear(self, token: str) -> None:
        self._entries.pop(token, None)
