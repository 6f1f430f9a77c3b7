"""One Pennylane client per tenant for as long as the replica runs.

The client library paces each client within its share of the token's 25 requests / 5 s with a
sliding log of that client's own sends. A new client per sync would start with an empty log, so
back-to-back syncs (an import-now right after a sync) could together exceed the share; keeping
the tenant's client across syncs keeps the log, so the poller never takes more than
`poller_rate_share` of the token's budget in any window, whatever the sync pattern. The client is
replaced (and its log with it) only when the tenant's token or share changes.
(Another replica taking a tenant over starts with an empty log: its first window may add to the
dead replica's last one; the outbound service's share absorbs that rare overlap.)

Every tenant's client borrows the replica's one HTTP pool (`shared_http_client`): a transport
and TLS context per tenant would cost memory per connected tenant for nothing, since all of them
talk to the same host. The pool holds no token; each client sends its own tenant's token on each
of its requests, so a connection may carry several tenants' requests one after another but a
request never carries another tenant's token.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import httpx
from pydantic import SecretStr
from stockpit_connections import PennylaneCompany
from stockpit_pennylane.client import (
    Forbidden,
    PennylaneClient,
    PennylaneError,
    Unauthorized,
    shared_http_client,
)
from stockpit_runtime.operations import pennylane_request_hook

from poller.adapters.gate import UNGATED, SyncGate


class TokenRefused(ValueError):
    """Pennylane does not accept the token (unknown, revoked or expired)."""


class PennylaneUnavailable(RuntimeError):
    """Pennylane could not be asked who the token belongs to (try again later)."""


class _CurrentGate:
    """Each sync puts its own gate here; the client asks it before every request (retries too),
    except in a task marked `UNGATED` (proving a token when connecting)."""

    def __init__(self, gate: SyncGate) -> None:
        self.gate = gate

    def check(self) -> None:
        if not UNGATED.get():
            self.gate.check()


@dataclass(slots=True)
class _TenantClient:
    client: PennylaneClient
    current: _CurrentGate
    token: SecretStr
    share: Decimal


_METRICS_HOOK = pennylane_request_hook("poller")


class TenantClients:
    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url
        self._clients: dict[str, _TenantClient] = {}
        self._http = shared_http_client(max_connections=max_connections, transport=transport)

    async def for_sync(
        self, tenant_id: str, token: SecretStr, share: Decimal, gate: SyncGate
    ) -> PennylaneClient:
        """The tenant's client, its requests now guarded by this sync's gate."""
        known = await self._client(tenant_id, token, share, gate)
        known.current.gate = gate
        return known.client

    async def identify(self, tenant_id: str, token: SecretStr, share: Decimal) -> PennylaneCompany:
        """Who `token` belongs to (Pennylane's `GET /me`, no scope needed). Asked through the
        tenant's own client when it has none yet or one of this token (it then counts in the
        poller's share of the token for the syncs that follow); a client of another token is
        left alone (a sync may be using it): a client of its own asks then."""
        known = self._clients.get(tenant_id)
        if known is None or self._matches(known, token, share):
            known = await self._client(tenant_id, token, share, SyncGate())
            return await _identify(known.client)
        async with PennylaneClient(
            token, base_url=self._base_url, budget_share=share, http=self._http
        ) as client:
            return await _identify(client)

    @staticmethod
    def _matches(known: _TenantClient, token: SecretStr, share: Decimal) -> bool:
        return known.share == share and known.token.get_secret_value() == token.get_secret_value()

    async def _client(
        self, tenant_id: str, token: SecretStr, share: Decimal, gate: SyncGate
    ) -> _TenantClient:
        known = self._clients.get(tenant_id)
        if known is not None and not self._matches(known, token, share):
            await known.client.aclose()
            known = None
        if known is None:
            current = _CurrentGate(gate)
            client = PennylaneClient(
                token,
                base_url=self._base_url,
                budget_share=share,
                on_request=_METRICS_HOOK,
                http=self._http,
                before_send=current.check,
            )
            known = self._clients[tenant_id] = _TenantClient(client, current, token, share)
        return known

    async def aclose(self) -> None:
        for known in self._clients.values():
            await known.client.aclose()
        self._clients.clear()
        await self._http.aclose()


async def _identify(client: PennylaneClient) -> PennylaneCompany:
    # Not part of a sync: passes whatever gate the last sync left on the client.
    marker = UNGATED.set(True)
    try:
        me = await client.get_me()
    except (Unauthorized, Forbidden) as exc:
        raise TokenRefused(
            f"Pennylane refused this token ({exc.status}): it is unknown, revoked or expired"
        ) from None
    except PennylaneError as exc:
        raise PennylaneUnavailable(
            f"could not ask Pennylane who this token belongs to: {exc}"
        ) from None
    finally:
        UNGATED.reset(marker)
    return PennylaneCompany(me.company.id, me.company.name)
