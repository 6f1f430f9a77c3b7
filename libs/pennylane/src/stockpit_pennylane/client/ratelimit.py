"""Client-side pacing for Pennylane's 25 requests / 5 s per token limit.

Every client in the process that uses the same token shares one `TokenWindow` from a process-wide
registry, keyed by a SHA-256 of the token (the registry never holds the token itself). Each client
also gets its own share of that budget (`budget_share`), so e.g. the poller can keep 60% and leave
the rest to outbound writes.

A sliding log of send times is kept: a request is sent only when fewer than `limit` requests were
sent in the last `window + safety_margin` seconds. The margin absorbs network and server-queueing
jitter between our send time and the server's arrival time. The bookkeeping uses a `threading.Lock`
held only for a few list operations (never across an await) so the registry works from any event
loop or thread."""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class RateLimit:
    requests: int = 25
    window_s: float = 5.0
    # Extra seconds added to the window when pacing: arrival at Pennylane lags our send time.
    safety_margin_s: float = 0.5

    @property
    def paced_window_s(self) -> float:
        return self.window_s + self.safety_margin_s


PENNYLANE_RATE_LIMIT = RateLimit()


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenWindow:
    """Sends made with one token by every client of this process."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.sent: deque[float] = deque()
        self.blocked_until = 0.0

    def block_for(self, seconds: float) -> None:
        """Hold all senders of this token for `seconds`: after a 429 or remaining=0."""
        until = time.monotonic() + max(0.0, seconds)
        with self.lock:
            self.blocked_until = max(self.blocked_until, until)


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, TokenWindow] = {}

    def window_for(self, token: str, limit: RateLimit) -> TokenWindow:
        key = token_key(token)
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                window = TokenWindow(limit)
                self._windows[key] = window
            return window


TOKEN_WINDOWS = _Registry()


def share_to_requests(limit: RateLimit, budget_share: Decimal | float) -> int:
    """Requests per window one client may send for `budget_share` in (0, 1]; at least one."""
    share = Decimal(str(budget_share))
    if not Decimal(0) < share <= Decimal(1):
        raise ValueError(f"budget_share must be in (0, 1], got {budget_share}")
    return max(1, math.floor(share * limit.requests))


class ClientBudget:
    """One client's slice of a token's window."""

    def __init__(self, window: TokenWindow, requests_per_window: int) -> None:
        self.window = window
        self.requests_per_window = requests_per_window
        self._own_sent: deque[float] = deque()

    def _reserve_or_wait(self) -> float:
        """Record a send and return 0, or return how long to wait before trying again."""
        window = self.window
        span = window.limit.paced_window_s
        with window.lock:
            now = time.monotonic()
            horizon = now - span
            while window.sent and window.sent[0] <= horizon:
                window.sent.popleft()
            while self._own_sent and self._own_sent[0] <= horizon:
                self._own_sent.popleft()
            if now < window.blocked_until:
                return window.blocked_until - now
            if len(window.sent) >= window.limit.requests:
                return window.sent[0] + span - now
            if len(self._own_sent) >= self.requests_per_window:
                return self._own_sent[0] + span - now
            window.sent.append(now)
            self._own_sent.append(now)
            return 0.0

    async def acquire(self) -> None:
        # The wait is on the clock (the oldest send leaving the window), not on an event.
        while (wait := self._reserve_or_wait()) > 0:  # noqa: ASYNC110
            # A tiny floor avoids a busy loop when the oldest send is just about to expire.
            await asyncio.sleep(max(wait, 0.001))
