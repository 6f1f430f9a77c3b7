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
from stockpit_pennylane.client import PennylaneClient
from stockpit_runtime.operations import pennylane_request_hook

from poller.adapters.gate import GatedTransport, SyncGate


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
        known = self._clients.get(tenant_id)
        if known is not None and (
            known.share != share or known.token.get_secret_value() != token.get_secret_value()
        ):
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
        known.transport.gate = gate
        return known.client

    async def aclose(self) -> None:
        for known in self._clients.values():
            await known.client.aclose()
        self._clients.clear()
