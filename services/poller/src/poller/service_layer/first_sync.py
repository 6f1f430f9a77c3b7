"""The poller's larger share of the token while a tenant's first sync runs.

A connecting tenant's first sync reads its whole history: that is when the poller needs the
token's budget most and outbound has least to send. Both pace themselves in their own process,
so the switch goes through the connection registry (see `stockpit_connections.registry`) in an
order that never lets the two together exceed the token: the poller records the first sync,
outbound takes the smaller share as soon as it reads that, and the poller raises its own share
only a hand-over later; at the end the poller lowers its share first (its client keeps its log
of sends, so it drops to the normal share within one window) and only then records the end,
after which outbound waits the hand-over again before taking its share back.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Protocol

from stockpit_contracts.payloads.connections import ConnectionSettings
from stockpit_pennylane.client import PennylaneClient


class FirstSyncRecord(Protocol):
    """The connection registry, as the first sync needs it."""

    async def first_sync_started(self, tenant_id: str) -> bool: ...

    async def first_sync_finished(self, tenant_id: str) -> None: ...


class FirstSyncPacing:
    def __init__(
        self,
        record: FirstSyncRecord,
        client: PennylaneClient,
        tenant_id: str,
        settings: ConnectionSettings,
        handover_s: float,
    ) -> None:
        self._record = record
        self._client = client
        self._tenant = tenant_id
        self.normal_share = settings.poller_rate_share
        self.first_sync_share = max(
            settings.poller_rate_share, settings.poller_first_sync_rate_share
        )
        self._handover_s = handover_s
        self._raise: asyncio.TimerHandle | None = None
        self.share: Decimal = self.normal_share

    def _set(self, share: Decimal) -> None:
        self.share = share
        self._client.set_budget_share(share)

    async def begin(self) -> None:
        """Record the first sync; the larger share follows a hand-over later. The client
        starts from the normal share (a run that stopped early may have left it raised)."""
        self._set(self.normal_share)
        if await self._record.first_sync_started(self._tenant):
            loop = asyncio.get_running_loop()
            self._raise = loop.call_later(self._handover_s, self._set, self.first_sync_share)

    def lower(self) -> None:
        """Back to the normal share (the run ends, however it ends)."""
        if self._raise is not None:
            self._raise.cancel()
            self._raise = None
        self._set(self.normal_share)

    async def finish(self) -> None:
        """Every stream's first scan is done: the normal share, then the record."""
        self.lower()
        await self._record.first_sync_finished(self._tenant)
