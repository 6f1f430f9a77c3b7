"""The HTTP transport of a pool shared by many tenants' clients (`shared_http_client`).

httpcore's connection pool re-examines every pooled connection twice per request (when the
request is queued and when its response is closed): each idle one is asked whether the server
closed it (a socket poll through anyio's attribute lookup), and whether it is surplus by
counting the pool's connections once per connection (quadratic), which dominates a request's
client CPU once a replica's pool holds many idle connections (docs/performance.md).
`LeanConnectionPool` keeps httpcore's rules (reuse the first available connection, open one
while under `max_connections`, else replace an idle one; close a connection the server closed
or whose keep-alive expired before reusing it; keep at most `max_keepalive_connections` idle)
in one pass: a connection is polled only when it is about to carry a request, and the idle ones are
counted once.
"""

from __future__ import annotations

import httpcore
import httpx
from httpcore import AsyncConnectionInterface


class LeanConnectionPool(httpcore.AsyncConnectionPool):
    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        closing: list[AsyncConnectionInterface] = []
        connections: list[AsyncConnectionInterface] = []
        for connection in self._connections:
            if connection.is_closed():
                continue
            # Idle but not available: a connection that failed to connect.
            if connection.is_idle() and not connection.is_available():
                closing.append(connection)
                continue
            connections.append(connection)
        self._connections = connections

        for pool_request in [r for r in self._requests if r.is_queued()]:
            origin = pool_request.request.url.origin
            chosen = self._reusable(origin, closing)
            if chosen is None:
                if len(self._connections) >= self._max_connections:
                    spare = next((c for c in self._connections if c.is_idle()), None)
                    if spare is None:
                        continue  # stays queued until a connection is free
                    self._connections.remove(spare)
                    closing.append(spare)
                chosen = self.create_connection(origin)
                self._connections.append(chosen)
            pool_request.assign_to_connection(chosen)

        idle = [c for c in self._connections if c.is_idle()]
        for connection in idle[: max(0, len(idle) - self._max_keepalive_connections)]:
            self._connections.remove(connection)
            closing.append(connection)
        return closing

    def _reusable(
        self, origin: httpcore.Origin, closing: list[AsyncConnectionInterface]
    ) -> AsyncConnectionInterface | None:
        """The first connection that can take a request to `origin` now; idle ones the server
        closed (or whose keep-alive expired) on the way are closed."""
        for connection in list(self._connections):
            if not (connection.can_handle_request(origin) and connection.is_available()):
                continue
            if connection.is_idle() and connection.has_expired():
                self._connections.remove(connection)
                closing.append(connection)
                continue
            return connection
        return None


class LeanTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a `LeanConnectionPool` (no proxy; TLS verified as by default)."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        default = self._pool
        assert isinstance(default, httpcore.AsyncConnectionPool)
        self._pool = LeanConnectionPool(
            ssl_context=default._ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )
