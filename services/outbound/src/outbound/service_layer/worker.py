"""The write worker: sends each tenant's pending writes to Pennylane, in order, until none is due.

Writes are stored first (by the Kafka consumer) and sent here, outside any consumer transaction,
so an HTTP call never holds a database transaction or a Kafka partition, and a crash at any point
leaves the write pending with its checkpoints: the next process picks it up where it stood.

- A new process waits one rate window before its first request (pacing is per process).
- One drain task per tenant with due writes, guarded by a PostgreSQL advisory lock so that
  replicas never send the same tenant's writes concurrently; tenants run side by side.
- A tenant whose token source says "disconnected" is left alone (its writes stay pending, their
  attempts untouched) and asked again only after `disconnected_recheck_s`. So is a tenant whose
  token Pennylane refused (401/403): the write stays pending with the reason, and nothing more
  is sent with that token; a new token (the registry's changes, asked every
  `disconnected_recheck_s`) sends them again, in order. The poller marks such a connection
  `needs_new_token` in the registry, which then gives no token: the pause outlives a restart.
- Retryable failures are rescheduled with backoff (`next_attempt_at`), so a record waiting to
  retry does not hold up the tenant's other records; after `max_attempts`, and at once for a
  failure retrying cannot fix, the write becomes a dead letter and inventory is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from stockpit_contracts import parse_event
from stockpit_contracts.payloads.outbound import EntityKind
from stockpit_pennylane.client import PennylaneClient
from stockpit_runtime import tracing
from stockpit_runtime.logging import bind_to_task, get_logger

from outbound.domain.last_change import WrittenState
from outbound.domain.writes import (
    Done,
    Failed,
    Outcome,
    PennylaneWon,
    RetryLater,
    RetrySchedule,
    TokenRefused,
    WriteStatus,
)
from outbound.service_layer.pennylane_writes import OutboundRequest, PennylaneWriter
from outbound.service_layer.ports import TokenSource
from outbound.service_layer.results import publish_assigned, publish_failed
from outbound.service_layer.unit_of_work import UnitOfWork

log = get_logger(__name__)

ClientFactory = Callable[[str, SecretStr], Awaitable[PennylaneClient]]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    topic_prefix: str = ""
    schedule: RetrySchedule = field(default_factory=RetrySchedule)
    poll_s: float = 0.5
    disconnected_recheck_s: float = 5.0
    max_concurrent_tenants: int = 8
    batch_size: int = 50
    supplier_invoice_deadline_days: int = 30
    # Pacing is per process: a new process cannot see what the one before it (killed, say) sent
    # in the current rate window, so it sends nothing for one window.
    startup_quiet_s: float = 5.5


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WriteWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        new_uow: Callable[[], UnitOfWork],
        tokens: TokenSource,
        client_factory: ClientFactory,
        config: WorkerConfig,
        tracer: tracing.ServiceTracer | None = None,
        budget_share: Callable[[str], Awaitable[Decimal]] | None = None,
    ) -> None:
        """`budget_share`: the tenant's share of its token now, asked before every write so
        that a kept client follows a change (the poller's first sync) within one write."""
        self._budget_share = budget_share
        self._tracer = tracer
        self._engine = engine
        self._uow = new_uow
        self._tokens = tokens
        self._client_factory = client_factory
        self._config = config
        self._clients: dict[str, tuple[str, PennylaneClient]] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._disconnected_until: dict[str, float] = {}
        # Tenant -> fingerprint of the token Pennylane refused: nothing is sent with it again.
        self._refused: dict[str, str] = {}
        self._slots = asyncio.Semaphore(config.max_concurrent_tenants)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="outbound-write-worker")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._drains.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._drains.clear()
        for _fingerprint, client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def _supervise(self) -> None:
        await asyncio.sleep(self._config.startup_quiet_s)
        while True:
            try:
                await self._start_due_drains()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("write worker: scheduling failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._config.poll_s)

    async def _start_due_drains(self) -> None:
        for tenant, task in list(self._drains.items()):
            if task.done():
                del self._drains[tenant]
                if not task.cancelled() and task.exception() is not None:
                    log.error("write drain failed", tenant_id=tenant, error=repr(task.exception()))
        async with self._uow() as uow:
            tenants = await uow.writes.tenants_with_due_writes(_now())
        clock = time.monotonic()
        for tenant in tenants:
            if tenant in self._drains or self._disconnected_until.get(tenant, 0.0) > clock:
                continue
            self._drains[tenant] = asyncio.create_task(
                self._drain(tenant), name=f"outbound-drain-{tenant}"
            )

    async def _drain(self, tenant: str) -> None:
        # This task's logs (the Pennylane client's, httpx's) name the tenant.
        bind_to_task(tenant_id=tenant)
        async with self._slots, self._engine.connect() as lock_connection:
            lock_name = f"outbound-writes:{tenant}"
            got_lock = await lock_connection.scalar(
                sa.text("SELECT pg_try_advisory_lock(hashtext(:name))"), {"name": lock_name}
            )
            await lock_connection.commit()
            if not got_lock:
                return  # another replica is sending this tenant's writes
            try:
                await self._drain_locked(tenant)
            finally:
                await lock_connection.execute(
                    sa.text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": lock_name}
                )
                await lock_connection.commit()

    async def _drain_locked(self, tenant: str) -> None:
        while True:
            async with self._uow() as uow:
                heads = await uow.writes.due_heads(tenant, _now(), self._config.batch_size)
            if not heads:
                return
            for write_id in heads:
                client = await self._client_for(tenant)
                if client is None:
                    return
                await self._process(client, tenant, write_id)

    async def _client_for(self, tenant: str) -> PennylaneClient | None:
        """The tenant's client, or None (and a pause) while the tenant is disconnected or its
        token is one Pennylane refused."""
        token = await self._tokens.token_for(tenant)
        fingerprint = (
            None if token is None else hashlib.sha256(token.get_secret_value().encode()).hexdigest()
        )
        if token is None or fingerprint == self._refused.get(tenant):
            self._disconnected_until[tenant] = (
                time.monotonic() + self._config.disconnected_recheck_s
            )
            if token is None:
                log.info("tenant not connected; its writes wait", tenant_id=tenant)
            cached = self._clients.pop(tenant, None)
            if cached is not None:
                await cached[1].aclose()
            return None
        assert fingerprint is not None
        self._disconnected_until.pop(tenant, None)
        self._refused.pop(tenant, None)
        cached = self._clients.get(tenant)
        if cached is not None and cached[0] == fingerprint:
            if self._budget_share is not None:
                # In place: the client's log of sends is kept, so a smaller share holds the
                # next sends until the last window's are within it.
                cached[1].set_budget_share(await self._budget_share(tenant))
            return cached[1]
        if cached is not None:
            await cached[1].aclose()
        client = await self._client_factory(tenant, token)
        self._clients[tenant] = (fingerprint, client)
        return client

    async def _process(self, client: PennylaneClient, tenant: str, write_id: int) -> None:
        async with self._uow() as uow:
            row = await uow.writes.claim_pending(write_id)
            if row is None:
                return
            if row.entity_kind != "receipt" and await uow.writes.later_write_done(row):
                # A replayed update older than one already written: sending it would undo it.
                await uow.writes.finish(
                    write_id, WriteStatus.SUPERSEDED, attempts=row.attempts, now=_now()
                )
                await uow.commit()
                return
            last_state = await uow.writes.last_written_state(row)
            await uow.commit()
        envelope = parse_event(row.envelope)
        request = cast(OutboundRequest, envelope.payload)

        async def checkpoint(progress: Mapping[str, Any]) -> None:
            async with self._uow() as checkpoint:
                await checkpoint.writes.save_progress(write_id, progress, _now())
                await checkpoint.commit()

        writer = PennylaneWriter(
            client,
            tenant,
            progress=row.progress,
            checkpoint=checkpoint,
            supplier_invoice_deadline_days=self._config.supplier_invoice_deadline_days,
            last_write=WrittenState.from_json(last_state) if last_state is not None else None,
        )
        try:
            # In the trace of the request that queued the write (when traced).
            with tracing.continuing(
                self._tracer,
                row.traceparent,
                f"outbound write {row.entity_kind}",
                **{"stockpit.write_id": str(write_id), "stockpit.entity_kind": row.entity_kind},
            ):
                outcome: Outcome = await writer.write(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or the database: retried like a transient failure
            log.exception("write failed unexpectedly", tenant_id=tenant, write_id=write_id)
            outcome = RetryLater(f"unexpected {type(exc).__name__}: {exc}")
        await self._settle(row, envelope.meta, outcome)

    async def _wait_for_new_token(self, row: sa.Row[Any], outcome: TokenRefused) -> None:
        """The write stays pending with the reason; the tenant's token is not used again."""
        cached = self._clients.get(row.tenant_id)
        if cached is not None:
            self._refused[row.tenant_id] = cached[0]
        now = _now()
        async with self._uow() as uow:
            await uow.writes.schedule_retry(
                row.id,
                attempts=row.attempts + 1,
                at=now,
                last_error=outcome.reason,
                now=now,
            )
            await uow.commit()
        log.warning(
            "Pennylane refused the token: the tenant's writes wait for a new one",
            tenant_id=row.tenant_id,
            write_id=row.id,
        )

    async def _settle(self, row: sa.Row[Any], meta: Any, outcome: Outcome) -> None:
        """Record what came of the write, and tell inventory, in one transaction."""
        if isinstance(outcome, TokenRefused):
            await self._wait_for_new_token(row, outcome)
            return
        async with self._uow() as uow:
            await self._record(uow, row, meta, outcome)
            await uow.commit()

    async def _record(self, uow: UnitOfWork, row: sa.Row[Any], meta: Any, outcome: Outcome) -> None:
        attempts = row.attempts + 1
        kind = cast(EntityKind, row.entity_kind)
        now = _now()
        bound = log.bind(
            tenant_id=row.tenant_id, write_id=row.id, entity_kind=kind, entity_id=row.entity_id
        )
        schedule = self._config.schedule
        if isinstance(outcome, Done):
            await uow.writes.finish(
                row.id,
                WriteStatus.DONE,
                attempts=attempts,
                now=now,
                pennylane_id=outcome.pennylane_id,
                written_state=outcome.state.to_json() if outcome.state is not None else None,
            )
            await publish_assigned(
                uow,
                topic_prefix=self._config.topic_prefix,
                request=meta,
                entity_kind=kind,
                entity_id=row.entity_id,
                pennylane_id=outcome.pennylane_id,
            )
            bound.info("write done", pennylane_id=outcome.pennylane_id, attempts=attempts)
            return
        if isinstance(outcome, PennylaneWon):
            # Nothing was written: Stockpit takes Pennylane's value from its changelog.
            await uow.writes.finish(
                row.id,
                WriteStatus.SUPERSEDED,
                attempts=attempts,
                now=now,
                pennylane_id=outcome.pennylane_id,
                last_error=outcome.reason,
            )
            bound.info("write superseded by a later Pennylane change", reason=outcome.reason)
            return
        if isinstance(outcome, RetryLater) and not schedule.exhausted(attempts):
            delay = schedule.delay_s(attempts, outcome)
            await uow.writes.schedule_retry(
                row.id,
                attempts=attempts,
                at=now + dt.timedelta(seconds=delay),
                last_error=outcome.reason,
                now=now,
            )
            bound.warning(
                "write failed; retrying",
                reason=outcome.reason,
                attempts=attempts,
                delay_s=delay,
            )
            return
        if isinstance(outcome, RetryLater):
            reason = f"gave up after {attempts} attempts: {outcome.reason}"
            retryable = True
        else:
            assert isinstance(outcome, Failed)
            reason, retryable = outcome.reason, outcome.retryable
        await uow.writes.finish(
            row.id, WriteStatus.FAILED, attempts=attempts, now=now, last_error=reason
        )
        await uow.writes.add_dead_letter(
            row,
            reason=reason,
            retryable=retryable,
            attempts=attempts,
            exchange=outcome.exchange,
            now=now,
        )
        await publish_failed(
            uow,
            topic_prefix=self._config.topic_prefix,
            request=meta,
            entity_kind=kind,
            entity_id=row.entity_id,
            reason=reason,
            retryable=retryable,
        )
        bound.error("write dead-lettered", reason=reason, retryable=retryable)
