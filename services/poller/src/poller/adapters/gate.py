"""Stops a tenant's Pennylane reads between any two requests, not only between pages.

Every request of a sync asks the sync's `SyncGate` first (the tenant's client's `before_send`,
see `poller.adapters.clients`).
The gate is closed by a disconnect (at once on the replica that handles the command, within one
scheduler tick on the others), or by a lost lease; the next request then raises instead of
being sent, and a request already in flight is the last one.
"""

from __future__ import annotations

from contextvars import ContextVar

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
