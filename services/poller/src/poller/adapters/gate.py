"""Stops a tenant's Pennylane reads between any two requests, not only between pages.

Every request of a sync goes through `GatedTransport`, which asks the sync's `SyncGate` first.
The gate is closed by a disconnect (at once on the replica that handles the command, within one
scheduler tick on the others), or by a lost lease; the next request then raises instead of
being sent, and a request already in flight is the last one.
"""

from __future__ import annotations

from contextvars import ContextVar

import httpx

# Set in a task whose requests are not part of a sync (proving a token when connecting): they
# pass the client's gate, while a sync's requests in other tasks are still checked.
UNGATED: ContextVar[bool] = ContextVar("poller_ungated_request", default=False)


class SyncGate:
    """Open while the sync may read; `close(reason)` makes every later `check()` raise it."""

    def __init__(self) -> None:
        self._reason: type[Exception] | None = None
        self._detail = ""

    @property
    def is_closed(self) -> bool:
        return self._reason is not None

    def close(self, reason: type[Exception], detail: str) -> None:
        if self._reason is None:
            self._reason, self._detail = reason, detail

    def check(self) -> None:
        if self._reason is not None:
            raise self._reason(self._detail)


class GatedTransport(httpx.AsyncBaseTransport):
    """httpx's transport, asking the gate before each request leaves (retries included).
    A tenant's client outlives its syncs: each sync puts its own gate in `gate`."""

    def __init__(self, gate: SyncGate) -> None:
        self.gate = gate
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not UNGATED.get():
            self.gate.check()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
