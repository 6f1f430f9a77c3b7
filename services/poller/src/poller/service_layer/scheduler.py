"""Runs tenant syncs: each tenant every sync interval and at once on import-now, under a lease.

Why leases in PostgreSQL rather than Kafka partition ownership: the schedule (due times,
import-now requests) and the watermarks already live in PostgreSQL, the lease version doubles as
a fencing token checked in the very transaction that commits a page, and a tenant's work does not
depend on how many command-topic partitions exist or on consumer-group rebalances. A replica renews
its leases while it syncs; a dead replica's leases expire after `lease_ttl_s` and any other replica
claims them (compare-and-set) and resumes from the committed watermarks.

Every sync is recorded in `sync_runs` (replica, lease version, streams, start at the claim and
end after its last request, both on the database clock, outcome). A replica gives a lease back
in the transaction that ends its run, and another can claim it only after that commit, so one
tenant's runs never overlap: the integration test with two replica processes checks exactly this.
The one exception is a holder that stalls (no renewal) for longer than `lease_ttl_s`: its lease
expires and may be taken while it is still reading; its page commits are then refused (fencing
by lease version) and its gate closes at its failed renewal.
Caveat: the lease expiry is compared with each replica's own clock; replicas on different hosts
need synchronized clocks (NTP) well within `lease_ttl_s`.

Disconnect: the replica that handles the command closes the sync's gate at once, so no further
request leaves (see `poller.adapters.gate`); over HTTP it also answers only once the sync ended.
Other replicas close the gate at their next tick (`scheduler_tick_s`), seeing the tenant inactive.
Interval: set per tenant in Stockpit (inventory's settings, their one home); inventory publishes
`inventory.settings.changed` on `stockpit.inventory.settings` and the poller keeps the value on
the tenant's schedule row (`state.set_sync_interval`), moving the next sync to one new interval
after the last one started. The connection's own `sync_interval_s` is not acted on.
Import-now: only the streams it names (see `poller.domain.schedule.IMPORT_NOW_STREAMS`); such a
sync leaves the tenant's next scheduled sync where it was.
A refused token (401/403): the run's release marks the connection `needs_new_token` and the
tenant's row paused, in one transaction, unless the tenant was connected again while the run
used the old token. A paused tenant is never claimed, so no request at all leaves for it, until
a connect, reconnect or re-point proves a token with Pennylane (`state.activate_tenant`); its
sync then resumes from the watermarks it kept. 5xx and timeouts keep the failure backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stockpit_connections import ConnectionRegistry, PennylaneCompany, TenantNotConnected
from stockpit_runtime.logging import bind_to_task, get_logger
from stockpit_runtime.tasks import stop_tasks

from poller.adapters import state
from poller.adapters.clients import TenantClients
from poller.adapters.gate import SyncGate
from poller.adapters.metrics import SYNCS
from poller.domain.schedule import (
    EVERY_STREAM,
    next_run_after_failure,
    next_run_after_success,
)
from poller.service_layer import run_report
from poller.service_layer.first_sync import FirstSyncPacing
from poller.service_layer.sync import Lease, SyncLimits, SyncStopped, TenantSync
from poller.service_layer.unit_of_work import UnitOfWork

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    replica_id: str
    pennylane_base_url: str
    topic_prefix: str
    lease_ttl_s: float = 30.0
    tick_s: float = 1.0
    max_concurrent_syncs: int = 32
    limits: SyncLimits = field(default_factory=SyncLimits)


class Scheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: ConnectionRegistry,
        config: SchedulerConfig,
    ) -> None:
        self._sessions = sessions
        self._registry = registry
        self._config = config
        self._clients = TenantClients(config.pennylane_base_url)
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._gates: dict[str, SyncGate] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._next_gate_check = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._backlog = False

    def _uow(self) -> UnitOfWork:
        return UnitOfWork(self._sessions, self._registry)

    @property
    def running_tenants(self) -> frozenset[str]:
        return frozenset(self._running)

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="poller-scheduler")

    def wake(self) -> None:
        """Look for due tenants now (after an import-now or a connect) instead of at next tick."""
        self._wake.set()

    async def identify_token(
        self, tenant_id: str, token: SecretStr, share: Decimal
    ) -> PennylaneCompany:
        """Who the token belongs to, asked within the poller's share of that token."""
        return await self._clients.identify(tenant_id, token, share)

    def close_gate(self, tenant_id: str) -> None:
        """No request for the tenant leaves this replica any more (one in flight may finish).
        A replica that did not receive the disconnect closes the gate at its next tick, when it
        sees the tenant inactive."""
        gate = self._gates.get(tenant_id)
        if gate is not None:
            gate.close(SyncStopped, tenant_id)

    async def stop_tenant(self, tenant_id: str, timeout_s: float = 60.0) -> None:
        """Close the gate and wait until the tenant's sync on this replica ended (its lease given
        back). Call it with no transaction open on the tenant's row: the sync's last commit and
        its release need that row."""
        self.close_gate(tenant_id)
        task = self._running.get(tenant_id)
        if task is not None:
            await asyncio.wait({task}, timeout=timeout_s)

    async def stop(self, timeout_s: float = 15.0) -> None:
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None]
        await stop_tasks(tasks, timeout_s=timeout_s, what="poller scheduler stop")
        self._loop_task = None
        await self._clients.aclose()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._config.tick_s)

    def _expiry(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self._config.lease_ttl_s)

    async def tick(self) -> None:
        """Close the gates of tenants disconnected elsewhere, then claim as many due tenants as
        there are free sync slots. Both read only the rows concerned (the running tenants, the
        claimed ones), so a tick costs the same with 10 tenants or 10,000."""
        now = dt.datetime.now(dt.UTC)
        # Once per tick period, not on every wake (one after each finished sync).
        if self._gates and now >= self._next_gate_check:
            self._next_gate_check = now + dt.timedelta(seconds=self._config.tick_s)
            async with self._uow() as uow:
                gone = await state.inactive_among(uow.session, list(self._gates))
            for tenant_id in gone:
                gate = self._gates.get(tenant_id)
                if gate is not None:
                    gate.close(SyncStopped, tenant_id)
        free = self._config.max_concurrent_syncs - len(self._running)
        if free <= 0:
            return
        async with self._uow() as uow:
            claimed = await state.claim_due(
                uow.session,
                self._config.replica_id,
                now,
                self._expiry(now),
                limit=free,
                running=list(self._running),
            )
            await uow.commit()
        self._backlog = len(claimed) == free
        for claim in claimed:
            lease = Lease(claim.tenant_id, self._config.replica_id, claim.version)
            # The gate exists before the task starts, so a disconnect can close it at any time.
            gate = self._gates[lease.tenant_id] = SyncGate()
            self._running[lease.tenant_id] = asyncio.create_task(
                self._sync(lease, now, claim, gate),
                name=f"sync-{lease.tenant_id}",
            )

    async def _heartbeat(self, lease: Lease, gate: SyncGate) -> None:
        while True:
            await asyncio.sleep(self._config.lease_ttl_s / 3)
            now = dt.datetime.now(dt.UTC)
            async with self._uow() as uow:
                kept = await state.renew_lease(
                    uow.session, lease.tenant_id, lease.owner, lease.version, self._expiry(now)
                )
                await uow.commit()
            if not kept:
                gate.close(state.LeaseLost, lease.tenant_id)
                return

    async def _sync(
        self,
        lease: Lease,
        started_at: dt.datetime,
        claim: state.Claimed,
        gate: SyncGate,
    ) -> None:
        tenant = lease.tenant_id
        # This task's logs (the Pennylane client's, httpx's) name the tenant.
        bind_to_task(tenant_id=tenant)
        streams = claim.streams
        heartbeat = asyncio.create_task(self._heartbeat(lease, gate))
        outcome, error = "failed", None
        sync: TenantSync | None = None
        failure: run_report.SyncErrorKind | None = None
        connected_at: dt.datetime | None = None
        try:
            connection = await self._registry.get(tenant)
            if connection is None or not connection.is_connected:
                raise SyncStopped(tenant)
            connected_at = connection.connected_at
            token = await self._registry.token_for(tenant)
            client = await self._clients.for_sync(
                tenant, token, connection.settings.poller_rate_share, gate
            )
            sync = TenantSync(
                new_uow=self._uow,
                client=client,
                lease=lease,
                settings=connection.settings,
                interval=dt.timedelta(seconds=claim.sync_interval_s),
                topic_prefix=self._config.topic_prefix,
                limits=self._config.limits,
                gate=gate,
                first_sync=FirstSyncPacing(
                    self._registry,
                    client,
                    tenant,
                    connection.settings,
                    self._registry.first_sync_handover.total_seconds(),
                ),
            )
            await sync.run(streams)
            outcome = "succeeded"
        except (SyncStopped, TenantNotConnected, state.TenantDisconnected):
            outcome = "stopped"
        except state.LeaseLost:
            outcome = "lease_lost"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as exc:
            # Never the token: client errors carry method, path and status only.
            error = f"{type(exc).__name__}: {exc}"[:1000]
            failure = run_report.error_kind(exc)
            log.exception("tenant sync failed", tenant_id=tenant)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            SYNCS.labels(outcome).inc()
            self._running.pop(tenant, None)
            self._gates.pop(tenant, None)
            ended = run_report.RunEnd(
                streams, sync.documents_published if sync else 0, failure, error
            )
            if outcome == "lease_lost":
                async with self._uow() as uow:
                    await state.finish_run(uow.session, tenant, lease.owner, lease.version, outcome)
                    await self._report_run(uow.session, lease, started_at, outcome, ended)
                    await uow.commit()
            elif outcome != "cancelled":
                full = streams == EVERY_STREAM
                refused = connected_at if failure == "token_rejected" else None
                await self._release(
                    lease,
                    started_at,
                    outcome,
                    error,
                    full=full,
                    interval_s=claim.sync_interval_s,
                    ended=ended,
                    refused=refused,
                )
        if outcome == "succeeded" and self._backlog:
            # Other tenants were due when the slots ran out: fill this one now, not at the tick.
            self.wake()

    async def _release(
        self,
        lease: Lease,
        started_at: dt.datetime,
        outcome: str,
        error: str | None,
        *,
        full: bool,
        interval_s: int,
        ended: run_report.RunEnd | None = None,
        refused: dt.datetime | None = None,
    ) -> None:
        """A sync of only the streams import-now named leaves the schedule as it was. The next
        due time is computed with the interval the sync was claimed under (`interval_s`) and
        written only if the tenant's interval is still that one; otherwise it is computed again
        with the interval read under the row lock: a change made in Stockpit during the sync
        counts for the next one. `refused`: Pennylane refused the token the tenant was
        connected with at that time; the tenant waits for a new one."""
        finished = dt.datetime.now(dt.UTC)
        succeeded = outcome == "succeeded"

        def next_due(interval: int) -> dt.datetime | None:
            if outcome == "failed":
                return next_run_after_failure(finished, interval)
            if full:
                return next_run_after_success(started_at, finished, interval)
            return None

        due = next_due(interval_s)
        async with self._uow() as uow:
            # First: it takes the tenant's row lock, as the release always did.
            released = await state.end_run(
                uow.session,
                lease.tenant_id,
                lease.owner,
                lease.version,
                outcome=outcome,
                started_at=started_at,
                next_due_at=due,
                succeeded_at=finished if succeeded else None,
                error=error,
                interval_s=interval_s if due is not None else None,
            )
            if not released:
                current = await state.sync_interval_of(
                    uow.session, lease.tenant_id, for_update=True
                )
                await state.release_lease(
                    uow.session,
                    lease.tenant_id,
                    lease.owner,
                    lease.version,
                    started_at=started_at,
                    next_due_at=next_due(current),
                    succeeded_at=finished if succeeded else None,
                    error=error,
                )
            if ended is not None:
                await self._report_run(uow.session, lease, started_at, outcome, ended)
            if refused is not None and await self._registry.mark_token_rejected(
                lease.tenant_id, refused, session=uow.session
            ):
                await state.pause_for_new_token(uow.session, lease.tenant_id, finished)
                log.warning(
                    "Pennylane refused the token: no request for the tenant until a new one",
                    tenant_id=lease.tenant_id,
                )
            await uow.commit()

    async def _report_run(
        self,
        session: AsyncSession,
        lease: Lease,
        started_at: dt.datetime,
        outcome: str,
        ended: run_report.RunEnd,
    ) -> None:
        """The run's end, for inventory's report, in the transaction that records it here."""
        await run_report.stage_run_finished(
            session,
            topic_prefix=self._config.topic_prefix,
            tenant_id=lease.tenant_id,
            started_at=started_at,
            outcome=outcome,
            ended=ended,
        )
