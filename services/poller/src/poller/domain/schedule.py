"""When a tenant is synced and by which replica. Pure: the clock is passed in.

Every replica reads the tenants' schedule rows and decides with these functions which ones to
claim; the claim itself is a compare-and-set on `lease_version` in PostgreSQL, so two replicas
that decide the same thing at the same time cannot both win. The version is also a fencing
token: a sync commits a page only while its lease still has the version it claimed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from stockpit_contracts.payloads.connections import MIN_SYNC_INTERVAL_S

from poller.domain.watermarks import Stream

# After a failed sync, wait this long (or the interval, if shorter) before trying again.
FAILURE_RETRY = dt.timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class TenantSchedule:
    tenant_id: str
    active: bool
    next_due_at: dt.datetime
    requested_at: dt.datetime | None
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    lease_version: int
    # What the pending import-now asked for; None = every stream.
    requested_streams: frozenset[Stream] | None = None
    # None: never synced.
    last_started_at: dt.datetime | None = None


EVERY_STREAM = frozenset(Stream)

# "Import invoices now" reads the customer-invoice changelog only; "import purchase orders now"
# the purchase orders only. Products and customers stay on the schedule: invoice lines that name
# a product or customer the poller has not seen yet are fetched on the spot.
IMPORT_NOW_STREAMS: dict[str, frozenset[Stream] | None] = {
    "invoices": frozenset({Stream.CUSTOMER_INVOICES}),
    "purchase_orders": frozenset({Stream.PURCHASE_ORDERS}),
    "everything": None,
}


def lease_is_free(schedule: TenantSchedule, now: dt.datetime) -> bool:
    """Nobody holds it, or its holder stopped renewing it (a dead replica) and it expired."""
    return (
        schedule.lease_owner is None
        or schedule.lease_expires_at is None
        or schedule.lease_expires_at <= now
    )


def is_due(schedule: TenantSchedule, now: dt.datetime) -> bool:
    return schedule.active and (schedule.requested_at is not None or schedule.next_due_at <= now)


def should_claim(schedule: TenantSchedule, now: dt.datetime, running: frozenset[str]) -> bool:
    return (
        schedule.tenant_id not in running and is_due(schedule, now) and lease_is_free(schedule, now)
    )


def claim_priority(schedule: TenantSchedule) -> tuple[bool, dt.datetime, str]:
    """Sort key of the tenants due at once (more due than free sync slots): those never synced
    first, so a new tenant's first sync never waits behind tenants already served; then the most
    overdue (the earlier of its due time and a pending import-now), so under overload every
    tenant's wait grows alike instead of some waiting minutes in table order."""
    due = schedule.next_due_at
    if schedule.requested_at is not None:
        due = min(due, schedule.requested_at)
    return (schedule.last_started_at is not None, due, schedule.tenant_id)


def streams_to_sync(schedule: TenantSchedule, now: dt.datetime) -> frozenset[Stream]:
    """Every stream when the schedule says so; otherwise only what import-now asked for."""
    if schedule.next_due_at <= now or schedule.requested_streams is None:
        return EVERY_STREAM
    return schedule.requested_streams


def interval(sync_interval_s: int) -> dt.timedelta:
    return dt.timedelta(seconds=max(sync_interval_s, MIN_SYNC_INTERVAL_S))


def next_run_after_success(
    started_at: dt.datetime, finished_at: dt.datetime, sync_interval_s: int
) -> dt.datetime:
    """One interval after the sync started, but never sooner than the minimum after it ended."""
    return max(
        started_at + interval(sync_interval_s),
        finished_at + dt.timedelta(seconds=MIN_SYNC_INTERVAL_S),
    )


def next_run_after_failure(finished_at: dt.datetime, sync_interval_s: int) -> dt.datetime:
    return finished_at + min(interval(sync_interval_s), FAILURE_RETRY)


def interval_after_change(
    last_started_at: dt.datetime | None, next_due_at: dt.datetime, sync_interval_s: int
) -> dt.datetime:
    """The next sync once the interval changed: one new interval after the last sync started
    (so a shorter interval takes effect at once, a longer one postpones it); a tenant never
    synced keeps its due time."""
    if last_started_at is None:
        return next_due_at
    return last_started_at + interval(sync_interval_s)


def request_left_after(
    requested_at: dt.datetime | None, started_at: dt.datetime
) -> dt.datetime | None:
    """An import-now that arrived while the sync ran asks for another one; older ones are done."""
    if requested_at is None or requested_at <= started_at:
        return None
    return requested_at
