"""Re-reading purchase orders of any age (rule 14), spread over the syncs. Pure: no I/O, no clock.

Pennylane has no changelog and no `updated_at` filter for commercial documents (NOTES §7), so
an edit or deletion of an old purchase order is only seen by reading it again. Every sync still
re-lists the newest ones (`SyncLimits.purchase_order_window`); beyond them, a cursor walks down
through the purchase orders the poller has published (the only ones that can have an order in
Stockpit), newest first, reading them again by `id in (...)`, a page of ids per request.

Pacing: a cycle covers every published purchase order once and must end within
`RECHECK_CYCLE` (under a day, leaving room for a late or failed sync). Each sync reads what
brings the cycle to where it must be when the *next* sync starts (one interval later), rounded
up to whole pages, so the requests are as few as the rule allows: about one request per
`page_size` published purchase orders per cycle, whatever the interval. A sync that comes late
reads more; a cycle that reaches the oldest one ends, and the next sync starts a new one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from poller.domain.watermarks import PurchaseOrderChanges

# Every published purchase order is re-read at least once per cycle; under a day (rule 14),
# with room for a sync that starts late or fails once.
RECHECK_CYCLE = dt.timedelta(hours=20)


@dataclass(frozen=True, slots=True)
class RecheckCursor:
    """Where a tenant's cycle stands: ids below `below_id` are still to be re-read (None: from
    the newest); `done` ids were re-read since `cycle_started_at` (None: no cycle running)."""

    below_id: int | None = None
    cycle_started_at: dt.datetime | None = None
    done: int = 0


@dataclass(frozen=True, slots=True)
class RecheckPlan:
    """What one sync re-reads: up to `quota` published ids below `below_id`, newest first."""

    below_id: int | None
    quota: int
    cycle_started_at: dt.datetime
    done_before: int


def plan_recheck(
    cursor: RecheckCursor,
    published_count: int,
    now: dt.datetime,
    interval: dt.timedelta,
    page_size: int,
    cycle: dt.timedelta = RECHECK_CYCLE,
) -> RecheckPlan:
    """How many of the `published_count` purchase orders this sync re-reads."""
    started = cursor.cycle_started_at
    # A cycle that read them all (none left below the cursor) gives way to a new one.
    if started is None or started > now or (cursor.done and cursor.done >= published_count):
        cursor = RecheckCursor(None, now, 0)
        started = now
    # Where the cycle must stand when the next sync starts, in whole pages.
    elapsed = (now - started) + interval
    share = min(1.0, elapsed / cycle)
    target = math.ceil(published_count * share)
    missing = max(0, target - cursor.done)
    quota = math.ceil(missing / page_size) * page_size if missing else 0
    return RecheckPlan(cursor.below_id, quota, started, cursor.done)


def cursor_after(
    plan: RecheckPlan, reread_ids: Sequence[int], *, partway: bool = False
) -> RecheckCursor:
    """`reread_ids`: the published ids the plan took (fewer than its quota = the oldest was
    reached, so the cycle is over and the next sync starts another). `partway`: only some of
    the plan's pages are done so far (the cursor is committed page by page)."""
    if not partway and len(reread_ids) < plan.quota:
        return RecheckCursor()
    if not reread_ids:
        return RecheckCursor(plan.below_id, plan.cycle_started_at, plan.done_before)
    return RecheckCursor(min(reread_ids), plan.cycle_started_at, plan.done_before + len(reread_ids))


def recheck_changes(
    known: Mapping[int, dt.datetime], found: Sequence[tuple[int, dt.datetime]]
) -> PurchaseOrderChanges:
    """Published purchase orders read again by id: a changed `updated_at` is an edit; an id
    asked for and not returned was deleted."""
    seen = dict(found)
    changed = tuple(sorted(i for i, at in seen.items() if i in known and known[i] != at))
    deleted = tuple(sorted(i for i in known if i not in seen))
    return PurchaseOrderChanges(changed, deleted)


def requests_per_cycle(published_count: int, page_size: int) -> int:
    """List requests one full cycle costs at least (more when syncs come late)."""
    return math.ceil(published_count / page_size)
