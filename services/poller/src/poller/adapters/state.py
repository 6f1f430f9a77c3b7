"""SQL for the poller's tables. Every function runs inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_contracts.payloads.connections import DEFAULT_SYNC_INTERVAL_S

from poller.adapters.orm import (
    customer_snapshots,
    ledger_accounts,
    product_snapshots,
    published_documents,
    purchase_order_rechecks,
    streams,
    sync_runs,
    tenants,
)
from poller.domain.mapping import CustomerSnapshot, ProductSnapshot
from poller.domain.recheck import RecheckCursor
from poller.domain.schedule import (
    TenantSchedule,
    claim_priority,
    interval_after_change,
    should_claim,
    streams_to_sync,
)
from poller.domain.watermarks import Phase, Stream, StreamState


class LeaseLost(Exception):
    """Another replica holds the tenant now: nothing more may be committed for it."""


# --- schedule and leases ------------------------------------------------------------------------


async def activate_tenant(session: AsyncSession, tenant_id: str, now: dt.datetime) -> None:
    """Known and active, with a sync asked for at once (from the kept watermarks). Called once
    the token is proved, so a pause for a refused token ends here."""
    statement = insert(tenants).values(
        tenant_id=tenant_id, active=True, next_due_at=now, requested_at=now, requested_streams=None
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[tenants.c.tenant_id],
            set_={
                "active": True,
                "requested_at": now,
                "requested_streams": None,
                "next_due_at": now,
                "token_rejected_at": None,
            },
        )
    )


async def pause_for_new_token(session: AsyncSession, tenant_id: str, now: dt.datetime) -> None:
    """Pennylane refused the token: no sync is claimed (no request sent) until
    `activate_tenant`; a pending import-now is dropped."""
    await session.execute(
        sa.update(tenants)
        .where(tenants.c.tenant_id == tenant_id)
        .values(token_rejected_at=now, requested_at=None, requested_streams=None)
    )


async def token_rejected_at(session: AsyncSession, tenant_id: str) -> dt.datetime | None:
    """When the tenant's token was refused, if it waits for a new one."""
    value: dt.datetime | None = await session.scalar(
        sa.select(tenants.c.token_rejected_at).where(tenants.c.tenant_id == tenant_id)
    )
    return value


async def reset_tenant(session: AsyncSession, tenant_id: str) -> None:
    """Forget what was read from the tenant's Pennylane company (watermarks, published
    versions, product / customer / account snapshots), so the next sync starts over, and bump
    the lease version so that a sync still running for it commits nothing more."""
    for table in (
        streams,
        published_documents,
        product_snapshots,
        customer_snapshots,
        ledger_accounts,
    ):
        await session.execute(sa.delete(table).where(table.c.tenant_id == tenant_id))
    await session.execute(
        sa.update(tenants)
        .where(tenants.c.tenant_id == tenant_id)
        .values(
            lease_owner=None,
            lease_expires_at=None,
            lease_version=tenants.c.lease_version + 1,
            last_error=None,
        )
    )


async def deactivate_tenant(session: AsyncSession, tenant_id: str) -> None:
    await session.execute(
        sa.update(tenants)
        .where(tenants.c.tenant_id == tenant_id)
        .values(active=False, requested_at=None)
    )


async def request_sync(
    session: AsyncSession,
    tenant_id: str,
    now: dt.datetime,
    streams: frozenset[Stream] | None,
) -> bool:
    """Ask for a sync of `streams` (None = every one) at once; requests add up until a sync
    starts. False when the tenant is unknown, disconnected or waits for a new token."""
    if streams is None:
        wanted: sa.ColumnElement[Any] = sa.null()
    else:
        asked = sa.cast(sorted(streams), postgresql.ARRAY(sa.Text))
        wanted = sa.case(
            (tenants.c.requested_at.is_(None), asked),
            (tenants.c.requested_streams.is_(None), sa.null()),
            else_=sa.func.array(
                sa.select(
                    sa.func.unnest(sa.func.array_cat(tenants.c.requested_streams, asked))
                ).scalar_subquery()
            ),
        )
    result = await session.execute(
        sa.update(tenants)
        .where(
            tenants.c.tenant_id == tenant_id,
            tenants.c.active.is_(True),
            tenants.c.token_rejected_at.is_(None),
        )
        .values(requested_at=now, requested_streams=wanted)
        .returning(tenants.c.tenant_id)
    )
    return result.first() is not None


async def set_sync_interval(
    session: AsyncSession, tenant_id: str, interval_s: int, now: dt.datetime
) -> None:
    """Follow the interval set in Stockpit: the next sync is one new interval after the last one
    started (at once if that is past). A tenant not connected yet keeps it for when it is."""
    row = (
        await session.execute(
            sa.select(tenants.c.last_started_at, tenants.c.next_due_at)
            .where(tenants.c.tenant_id == tenant_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        await session.execute(
            insert(tenants)
            .values(tenant_id=tenant_id, active=False, next_due_at=now, sync_interval_s=interval_s)
            .on_conflict_do_update(
                index_elements=[tenants.c.tenant_id], set_={"sync_interval_s": interval_s}
            )
        )
        return
    next_due = interval_after_change(row.last_started_at, row.next_due_at, interval_s)
    await session.execute(
        sa.update(tenants)
        .where(tenants.c.tenant_id == tenant_id)
        .values(sync_interval_s=interval_s, next_due_at=next_due)
    )


async def sync_interval_of(
    session: AsyncSession, tenant_id: str, *, for_update: bool = False
) -> int:
    """`for_update`: a change of the interval waits until this transaction has used it."""
    statement = sa.select(tenants.c.sync_interval_s).where(tenants.c.tenant_id == tenant_id)
    value = await session.scalar(statement.with_for_update() if for_update else statement)
    return _interval_or_default(value)


def _interval_or_default(value: int | None) -> int:
    return DEFAULT_SYNC_INTERVAL_S if value is None else int(value)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A tenant this replica now holds: the lease version, the streams its sync reads and the
    interval that sync runs under."""

    tenant_id: str
    version: int
    streams: frozenset[Stream]
    sync_interval_s: int


def _claim_order() -> list[sa.ColumnElement[Any]]:
    """`poller.domain.schedule.claim_priority` in SQL, so the LIMIT keeps the right rows."""
    return [
        tenants.c.last_started_at.is_not(None),
        sa.func.least(tenants.c.next_due_at, tenants.c.requested_at),
        tenants.c.tenant_id,
    ]


async def claim_due(
    session: AsyncSession,
    owner: str,
    now: dt.datetime,
    expires_at: dt.datetime,
    *,
    limit: int,
    running: Collection[str] = (),
) -> list[Claimed]:
    """Claim up to `limit` due tenants whose lease is free, in claim priority, and record a run
    for each. Reads only the rows it claims, however many tenants there are. `SKIP LOCKED`:
    replicas claiming at the same time take different tenants instead of queueing on one
    another's rows (the lease version stays the fencing token)."""
    if limit <= 0:
        return []
    t = tenants
    candidates = (
        sa.select(
            t.c.tenant_id,
            t.c.active,
            t.c.next_due_at,
            t.c.requested_at,
            t.c.lease_owner,
            t.c.lease_expires_at,
            t.c.lease_version,
            t.c.requested_streams,
            t.c.last_started_at,
        )
        .where(
            t.c.active.is_(True),
            # A refused token is not tried again: it waits for a new one (activate_tenant).
            t.c.token_rejected_at.is_(None),
            sa.or_(t.c.requested_at.is_not(None), t.c.next_due_at <= now),
            sa.or_(t.c.lease_owner.is_(None), t.c.lease_expires_at <= now),
        )
        .order_by(*_claim_order())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if running:
        candidates = candidates.where(t.c.tenant_id.not_in(list(running)))
    schedules = [
        TenantSchedule(
            *row[:7],
            requested_streams=None if row[7] is None else frozenset(Stream(s) for s in row[7]),
            last_started_at=row[8],
        )
        for row in await session.execute(candidates)
    ]
    running_now = frozenset(running)
    schedules = sorted(
        (s for s in schedules if should_claim(s, now, running_now)), key=claim_priority
    )
    if not schedules:
        return []
    claimed = await session.execute(
        sa.update(t)
        .where(t.c.tenant_id.in_([s.tenant_id for s in schedules]))
        .values(
            lease_owner=owner,
            lease_expires_at=expires_at,
            lease_version=t.c.lease_version + 1,
            last_started_at=now,
        )
        .returning(t.c.tenant_id, t.c.lease_version, t.c.sync_interval_s)
    )
    held = {row.tenant_id: row for row in claimed}
    result = [
        Claimed(
            s.tenant_id,
            int(held[s.tenant_id].lease_version),
            streams_to_sync(s, now),
            _interval_or_default(held[s.tenant_id].sync_interval_s),
        )
        for s in schedules
    ]
    # The database clock, so runs of all replicas compare.
    await session.execute(
        sa.insert(sync_runs).values(started_at=sa.func.clock_timestamp()),
        [
            {
                "tenant_id": c.tenant_id,
                "replica_id": owner,
                "lease_version": c.version,
                "streams": sorted(x.value for x in c.streams),
            }
            for c in result
        ],
    )
    return result


async def inactive_among(session: AsyncSession, tenant_ids: Collection[str]) -> set[str]:
    """Which of these tenants are disconnected (or unknown)."""
    if not tenant_ids:
        return set()
    active = await session.scalars(
        sa.select(tenants.c.tenant_id).where(
            tenants.c.tenant_id.in_(list(tenant_ids)), tenants.c.active.is_(True)
        )
    )
    return set(tenant_ids) - set(active)


# Sync runs older than this are deleted when the tenant's next run ends.
SYNC_RUNS_KEPT_DAYS = 7


async def finish_run(
    session: AsyncSession, tenant_id: str, owner: str, version: int, outcome: str
) -> None:
    """After the run's last request; in the lease release's transaction when there is one.
    One statement: the run's end, and the tenant's runs past their keeping time deleted."""
    await session.execute(
        _FINISH_RUN,
        {"p_tenant": tenant_id, "p_owner": owner, "p_version": version, "p_outcome": outcome},
    )


def _finished_run() -> tuple[sa.CTE, sa.CTE]:
    """The run's end and the deletion of the tenant's runs past their keeping time, as CTEs of
    the bound parameters `p_tenant`, `p_owner`, `p_version` and `p_outcome`."""
    p_tenant = sa.bindparam("p_tenant", type_=sa.Text)
    done = (
        sa.update(sync_runs)
        .where(
            sync_runs.c.tenant_id == p_tenant,
            sync_runs.c.replica_id == sa.bindparam("p_owner", type_=sa.Text),
            sync_runs.c.lease_version == sa.bindparam("p_version", type_=sa.BigInteger),
        )
        .values(
            finished_at=sa.func.clock_timestamp(),
            outcome=sa.bindparam("p_outcome", type_=sa.Text),
        )
        .returning(sync_runs.c.id)
        .cte("done")
    )
    gone = (
        sa.delete(sync_runs)
        .where(
            sync_runs.c.tenant_id == p_tenant,
            sync_runs.c.started_at
            < sa.func.now() - sa.text(f"interval '{SYNC_RUNS_KEPT_DAYS} days'"),
        )
        .returning(sync_runs.c.id)
        .cte("gone")
    )
    return done, gone


def _finish_run_statement() -> sa.Select[int]:
    done, gone = _finished_run()
    return sa.select(sa.func.count()).select_from(done).add_cte(gone)


_FINISH_RUN = _finish_run_statement()


def _held(tenant_id: str, owner: str, version: int) -> sa.ColumnElement[bool]:
    return sa.and_(
        tenants.c.tenant_id == tenant_id,
        tenants.c.lease_owner == owner,
        tenants.c.lease_version == version,
    )


async def renew_lease(
    session: AsyncSession, tenant_id: str, owner: str, version: int, expires_at: dt.datetime
) -> bool:
    result = await session.execute(
        sa.update(tenants)
        .where(_held(tenant_id, owner, version))
        .values(lease_expires_at=expires_at)
        .returning(tenants.c.tenant_id)
    )
    return result.first() is not None


class TenantDisconnected(Exception):
    """The tenant was disconnected: its sync commits nothing more."""


async def hold_lease(
    session: AsyncSession, tenant_id: str, owner: str, version: int, now: dt.datetime
) -> None:
    """Lock the tenant's row while this transaction commits its page, or raise LeaseLost (or
    TenantDisconnected once a disconnect committed).

    The row lock makes a competing claim (and a disconnect) wait until this commit is over, so a
    page is committed either before another replica takes the tenant over, or before the
    disconnect, or not at all."""
    active = await session.scalar(
        _HOLD_LEASE, {"p_tenant": tenant_id, "p_owner": owner, "p_version": version, "p_now": now}
    )
    if active is None:
        raise LeaseLost(tenant_id)
    if not active:
        raise TenantDisconnected(tenant_id)


# The statements of every page and every sync are built once, their parameters bound at each
# execution: building and keying a statement costs about as much CPU as running it.
_HOLD_LEASE = (
    sa.select(tenants.c.active)
    .where(
        tenants.c.tenant_id == sa.bindparam("p_tenant"),
        tenants.c.lease_owner == sa.bindparam("p_owner"),
        tenants.c.lease_version == sa.bindparam("p_version"),
        tenants.c.lease_expires_at > sa.bindparam("p_now", type_=sa.DateTime(timezone=True)),
    )
    .with_for_update()
)


async def release_lease(
    session: AsyncSession,
    tenant_id: str,
    owner: str,
    version: int,
    *,
    started_at: dt.datetime,
    next_due_at: dt.datetime | None,
    succeeded_at: dt.datetime | None,
    error: str | None,
) -> None:
    """`next_due_at` None keeps the schedule (a sync of only the streams import-now named)."""
    await session.execute(
        _RELEASE,
        {
            "p_tenant": tenant_id,
            "p_owner": owner,
            "p_version": version,
            "p_started": started_at,
            "p_next_due": next_due_at,
            "p_succeeded": succeeded_at,
            "p_error": error,
            "p_interval": None,
        },
    )


async def end_run(
    session: AsyncSession,
    tenant_id: str,
    owner: str,
    version: int,
    *,
    outcome: str,
    started_at: dt.datetime,
    next_due_at: dt.datetime | None,
    succeeded_at: dt.datetime | None,
    error: str | None,
    interval_s: int | None,
) -> bool:
    """`finish_run` and `release_lease` in one statement, the lease given back only if the
    tenant's interval is still `interval_s` (the one `next_due_at` was computed with; None: any).
    False when nothing was released (the interval changed during the sync, or the lease is
    lost): the run's end is recorded all the same, and the caller releases with the interval
    read under the row lock (`sync_interval_of(for_update=True)`, then `release_lease`)."""
    result = await session.execute(
        _END_RUN,
        {
            "p_tenant": tenant_id,
            "p_owner": owner,
            "p_version": version,
            "p_outcome": outcome,
            "p_started": started_at,
            "p_next_due": next_due_at,
            "p_succeeded": succeeded_at,
            "p_error": error,
            "p_interval": interval_s,
        },
    )
    return result.first() is not None


def _release_statement() -> sa.Update:
    """The lease given back, built once (its parameters bound at each execution): building
    and keying a statement of this size costs more CPU than running it. `p_interval` None
    releases whatever the tenant's interval; `p_next_due` and `p_succeeded` None keep them."""
    p_tenant, p_owner, p_version = (
        sa.bindparam("p_tenant", type_=sa.Text),
        sa.bindparam("p_owner", type_=sa.Text),
        sa.bindparam("p_version", type_=sa.BigInteger),
    )
    timestamp = sa.DateTime(timezone=True)
    interval = sa.bindparam("p_interval", type_=sa.Integer)
    arrived_during_sync = tenants.c.requested_at > sa.bindparam("p_started", type_=timestamp)
    return (
        sa.update(tenants)
        .where(
            tenants.c.tenant_id == p_tenant,
            tenants.c.lease_owner == p_owner,
            tenants.c.lease_version == p_version,
            sa.or_(
                interval.is_(None),
                sa.func.coalesce(tenants.c.sync_interval_s, DEFAULT_SYNC_INTERVAL_S) == interval,
            ),
        )
        .values(
            lease_owner=None,
            lease_expires_at=None,
            last_error=sa.bindparam("p_error", type_=sa.Text),
            # An import-now that arrived during the sync asks for another one.
            requested_at=sa.case((arrived_during_sync, tenants.c.requested_at), else_=None),
            requested_streams=sa.case(
                (arrived_during_sync, tenants.c.requested_streams), else_=None
            ),
            # None keeps the schedule (a sync of only the streams import-now named).
            next_due_at=sa.func.coalesce(
                sa.bindparam("p_next_due", type_=timestamp), tenants.c.next_due_at
            ),
            last_success_at=sa.func.coalesce(
                sa.bindparam("p_succeeded", type_=timestamp), tenants.c.last_success_at
            ),
        )
        .returning(tenants.c.tenant_id)
    )


def _end_run_statement() -> sa.Update:
    done, gone = _finished_run()
    return _release_statement().add_cte(done).add_cte(gone)


_RELEASE = _release_statement()
_END_RUN = _end_run_statement()


# --- streams ------------------------------------------------------------------------------------


async def load_streams(session: AsyncSession, tenant_id: str) -> dict[Stream, StreamState]:
    """Every stream's watermark in one query; a stream never read is new."""
    rows = await session.execute(_LOAD_STREAMS, {"p_tenant": tenant_id})
    found = {
        Stream(row.stream): StreamState(
            Phase(row.phase),
            row.after_id,
            row.changelog_from,
            frozenset(row.changelog_seen_ids),
            row.scan_started_at,
        )
        for row in rows
    }
    return {stream: found.get(stream, StreamState()) for stream in Stream}


_LOAD_STREAMS = sa.select(
    streams.c.stream,
    streams.c.phase,
    streams.c.after_id,
    streams.c.changelog_from,
    streams.c.changelog_seen_ids,
    streams.c.scan_started_at,
).where(streams.c.tenant_id == sa.bindparam("p_tenant"))


async def save_stream(
    session: AsyncSession, tenant_id: str, stream: Stream, state: StreamState
) -> None:
    await session.execute(
        _SAVE_STREAM,
        {
            "tenant_id": tenant_id,
            "stream": stream.value,
            "phase": state.phase.value,
            "after_id": state.after_id,
            "changelog_from": state.changelog_from,
            "changelog_seen_ids": sorted(state.seen_at_watermark),
            "scan_started_at": state.scan_started_at,
        },
    )


def _upsert(table: sa.Table, keys: Sequence[str], updated: Sequence[str]) -> sa.Executable:
    """An insert of the columns the parameters name, updating `updated` on a conflict."""
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[key] for key in keys],
        set_={name: statement.excluded[name] for name in updated},
    )


_SAVE_STREAM = _upsert(
    streams,
    ("tenant_id", "stream"),
    ("phase", "after_id", "changelog_from", "changelog_seen_ids", "scan_started_at"),
)


# --- published documents ------------------------------------------------------------------------


async def published(
    session: AsyncSession, tenant_id: str, source: str, ids: Iterable[int]
) -> dict[int, tuple[str, dt.datetime]]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await session.execute(
        _PUBLISHED, {"p_tenant": tenant_id, "p_source": source, "p_ids": wanted}
    )
    return {row.pennylane_id: (row.kind, row.updated_at) for row in rows}


_PUBLISHED = sa.select(
    published_documents.c.pennylane_id,
    published_documents.c.kind,
    published_documents.c.updated_at,
).where(
    published_documents.c.tenant_id == sa.bindparam("p_tenant"),
    published_documents.c.source == sa.bindparam("p_source"),
    published_documents.c.pennylane_id.in_(sa.bindparam("p_ids", expanding=True)),
)


async def published_between(
    session: AsyncSession, tenant_id: str, source: str, lowest: int, highest: int
) -> dict[int, dt.datetime]:
    rows = await session.execute(
        _PUBLISHED_BETWEEN,
        {"p_tenant": tenant_id, "p_source": source, "p_lowest": lowest, "p_highest": highest},
    )
    return {row.pennylane_id: row.updated_at for row in rows}


_PUBLISHED_BETWEEN = sa.select(
    published_documents.c.pennylane_id, published_documents.c.updated_at
).where(
    published_documents.c.tenant_id == sa.bindparam("p_tenant"),
    published_documents.c.source == sa.bindparam("p_source"),
    published_documents.c.pennylane_id.between(
        sa.bindparam("p_lowest", type_=sa.BigInteger),
        sa.bindparam("p_highest", type_=sa.BigInteger),
    ),
)


async def record_published(
    session: AsyncSession,
    tenant_id: str,
    source: str,
    documents: Mapping[int, tuple[str, dt.datetime]],
) -> None:
    if not documents:
        return
    await session.execute(
        _RECORD_PUBLISHED,
        [
            {
                "tenant_id": tenant_id,
                "source": source,
                "pennylane_id": pennylane_id,
                "kind": kind,
                "updated_at": updated_at,
            }
            for pennylane_id, (kind, updated_at) in documents.items()
        ],
    )


_RECORD_PUBLISHED = _upsert(
    published_documents, ("tenant_id", "source", "pennylane_id"), ("kind", "updated_at")
)


async def forget_published(
    session: AsyncSession, tenant_id: str, source: str, ids: Iterable[int]
) -> None:
    gone = list(ids)
    if gone:
        await session.execute(
            sa.delete(published_documents).where(
                published_documents.c.tenant_id == tenant_id,
                published_documents.c.source == source,
                published_documents.c.pennylane_id.in_(gone),
            )
        )


async def published_below(
    session: AsyncSession, tenant_id: str, source: str, below_id: int | None, limit: int
) -> dict[int, dt.datetime]:
    """Up to `limit` published documents with ids below `below_id` (None: from the newest),
    newest first."""
    if limit <= 0:
        return {}
    t = published_documents
    statement = sa.select(t.c.pennylane_id, t.c.updated_at).where(
        t.c.tenant_id == tenant_id, t.c.source == source
    )
    if below_id is not None:
        statement = statement.where(t.c.pennylane_id < below_id)
    rows = await session.execute(statement.order_by(t.c.pennylane_id.desc()).limit(limit))
    return {row.pennylane_id: row.updated_at for row in rows}


async def load_recheck(
    session: AsyncSession, tenant_id: str, source: str
) -> tuple[RecheckCursor, int]:
    """The tenant's recheck cursor and how many documents of `source` it published, in one
    statement."""
    row = (await session.execute(_LOAD_RECHECK, {"p_tenant": tenant_id, "p_source": source})).one()
    published = int(row[0] or 0)
    if row.done is None:  # no cursor yet (the outer join found no row)
        return RecheckCursor(), published
    return RecheckCursor(row.below_id, row.cycle_started_at, row.done), published


def _load_recheck_statement() -> sa.Select[Any]:
    t = purchase_order_rechecks
    tenant = sa.bindparam("p_tenant", type_=sa.Text)
    count = (
        sa.select(sa.func.count())
        .where(
            published_documents.c.tenant_id == tenant,
            published_documents.c.source == sa.bindparam("p_source", type_=sa.Text),
        )
        .scalar_subquery()
    )
    one = sa.select(sa.literal(1).label("one")).subquery()
    return sa.select(count, t.c.below_id, t.c.cycle_started_at, t.c.done).select_from(
        one.outerjoin(t, t.c.tenant_id == tenant)
    )


_LOAD_RECHECK = _load_recheck_statement()


async def save_recheck(session: AsyncSession, tenant_id: str, cursor: RecheckCursor) -> None:
    values = {
        "below_id": cursor.below_id,
        "cycle_started_at": cursor.cycle_started_at,
        "done": cursor.done,
    }
    await session.execute(
        insert(purchase_order_rechecks)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=[purchase_order_rechecks.c.tenant_id], set_=values)
    )


# --- snapshots ----------------------------------------------------------------------------------


async def load_products(
    session: AsyncSession, tenant_id: str, ids: Iterable[int]
) -> dict[int, ProductSnapshot]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await session.execute(_LOAD_PRODUCTS, {"p_tenant": tenant_id, "p_ids": wanted})
    return {row.pennylane_id: ProductSnapshot(*row) for row in rows}


_LOAD_PRODUCTS = sa.select(
    product_snapshots.c.pennylane_id,
    product_snapshots.c.label,
    product_snapshots.c.reference,
    product_snapshots.c.ledger_account_number,
    product_snapshots.c.unit,
).where(
    product_snapshots.c.tenant_id == sa.bindparam("p_tenant"),
    product_snapshots.c.pennylane_id.in_(sa.bindparam("p_ids", expanding=True)),
)


async def save_products(
    session: AsyncSession, tenant_id: str, snapshots: Iterable[ProductSnapshot]
) -> None:
    rows = [
        {
            "tenant_id": tenant_id,
            "pennylane_id": s.pennylane_id,
            "label": s.label,
            "reference": s.reference,
            "ledger_account_number": s.ledger_account_number,
            "unit": s.unit,
        }
        for s in snapshots
    ]
    if not rows:
        return
    statement = insert(product_snapshots)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[product_snapshots.c.tenant_id, product_snapshots.c.pennylane_id],
            set_={
                name: statement.excluded[name]
                for name in ("label", "reference", "ledger_account_number", "unit")
            },
        ),
        rows,
    )


async def load_customers(
    session: AsyncSession, tenant_id: str, ids: Iterable[int]
) -> dict[int, CustomerSnapshot]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await session.execute(_LOAD_CUSTOMERS, {"p_tenant": tenant_id, "p_ids": wanted})
    return {
        row.pennylane_id: CustomerSnapshot(row.pennylane_id, row.name, row.kind, tuple(row.emails))
        for row in rows
    }


_LOAD_CUSTOMERS = sa.select(
    customer_snapshots.c.pennylane_id,
    customer_snapshots.c.name,
    customer_snapshots.c.kind,
    customer_snapshots.c.emails,
).where(
    customer_snapshots.c.tenant_id == sa.bindparam("p_tenant"),
    customer_snapshots.c.pennylane_id.in_(sa.bindparam("p_ids", expanding=True)),
)


async def save_customers(
    session: AsyncSession, tenant_id: str, snapshots: Iterable[CustomerSnapshot]
) -> None:
    rows = [
        {
            "tenant_id": tenant_id,
            "pennylane_id": s.pennylane_id,
            "name": s.name,
            "kind": s.kind,
            "emails": list(s.emails),
        }
        for s in snapshots
    ]
    if not rows:
        return
    statement = insert(customer_snapshots)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[customer_snapshots.c.tenant_id, customer_snapshots.c.pennylane_id],
            set_={name: statement.excluded[name] for name in ("name", "kind", "emails")},
        ),
        rows,
    )


async def load_ledger_accounts(
    session: AsyncSession, tenant_id: str, ids: Iterable[int]
) -> dict[int, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(ledger_accounts.c.pennylane_id, ledger_accounts.c.number).where(
            ledger_accounts.c.tenant_id == tenant_id, ledger_accounts.c.pennylane_id.in_(wanted)
        )
    )
    return {row.pennylane_id: row.number for row in rows}


async def save_ledger_accounts(
    session: AsyncSession, tenant_id: str, numbers: Mapping[int, str]
) -> None:
    if not numbers:
        return
    statement = insert(ledger_accounts)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ledger_accounts.c.tenant_id, ledger_accounts.c.pennylane_id],
            set_={"number": statement.excluded.number},
        ),
        [
            {"tenant_id": tenant_id, "pennylane_id": account_id, "number": number}
            for account_id, number in numbers.items()
        ],
    )
