"""One Pennylane client per tenant for as long as the replica runs.

The client library paces each client within its share of the token's 25 requests / 5 s with a
sliding log of that client's own sends. A new client per sync would start with an empty log, so
back-to-back syncs (an import-now right after a sync) could together exceed the share; keeping
the tenant's client across syncs keeps the log, so the poller never takes more than
`poller_rate_share` of the token's budget in any window, whatever the sync pattern. The client is
replaced (and its log with it) only when the tenant's token or share changes.
(Another replica taking a tenant over starts with an empty log: its first window may add to the
dead replica's last one; the outbound service's share absorbs that rare overlap.)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pydantic import SecretStr
from stockpit_connections import PennylaneCompany
from stockpit_pennylane.client import (
    Forbidden,
    PennylaneClient,
    PennylaneError,
    Unauthorized,
)
from stockpit_runtime.operations import pennylane_request_hook

from poller.adapters.gate import UNGATED, GatedTransport, SyncGate


class TokenRefused(ValueError):
    """Pennylane does not accept the token (unknown, revoked or expired)."""


class PennylaneUnavailable(RuntimeError):
    """Pennylane could not be asked who the token belongs to (try again later)."""


@dataclass(slots=True)
class _TenantClient:
    client: PennylaneClient
    transport: GatedTransport
    token: SecretStr
    share: Decimal


_METRICS_HOOK = pennylane_request_hook("poller")


class TenantClients:
    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._clients: dict[str, _TenantClient] = {}

    async def for_sync(
        self, tenant_id: str, token: SecretStr, share: Decimal, gate: SyncGate
    ) -> PennylaneClient:
        """The tenant's client, its requests now guarded by this sync's gate."""
        known = await self._client(tenant_id, token, share, gate)
        known.transport.gate = gate
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
        async with PennylaneClient(token, base_url=self._base_url, budget_share=share) as client:
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
            transport = GatedTransport(gate)
            client = PennylaneClient(
                token,
                base_url=self._base_url,
                budget_share=share,
                on_request=_METRICS_HOOK,
                transport=transport,
            )
            known = self._clients[tenant_id] = _TenantClient(client, transport, token, share)
        return known

    async def aclose(self) -> None:
        for known in self._clients.values():
            await known.client.aclose()
        self._clients.clear()


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
