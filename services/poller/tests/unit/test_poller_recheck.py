"""The re-reading of old purchase orders (rule 14): every published one is read again within a
day, at any interval, at about one request per page of ids per cycle."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pytest
from poller.domain.recheck import (
    RECHECK_CYCLE,
    RecheckCursor,
    cursor_after,
    plan_recheck,
    recheck_changes,
    requests_per_cycle,
)
from poller.domain.schedule import interval_after_change

T0 = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
PAGE = 100


def _simulate(
    count: int, interval: dt.timedelta, days: int, *, new_per_sync: int = 0, late_every: int = 0
) -> tuple[dict[int, list[dt.datetime]], int]:
    """Syncs every `interval` (every `late_every`-th one an interval late) over `days`, the
    published ids being 1..count (growing by `new_per_sync`, each new one read when it appears).
    Returns the read times per id, from the start or its first read, and the list requests."""
    reads: dict[int, list[dt.datetime]] = {i: [T0] for i in range(1, count + 1)}
    cursor = RecheckCursor()
    now, requests, sync = T0, 0, 0
    while now < T0 + days * DAY:
        plan = plan_recheck(cursor, count, now, interval, PAGE)
        top = count if plan.below_id is None else plan.below_id - 1
        taken = list(range(top, max(0, top - plan.quota), -1))
        for i in taken:
            reads[i].append(now)
        requests += math.ceil(len(taken) / PAGE)
        cursor = cursor_after(plan, taken)
        for i in range(count + 1, count + new_per_sync + 1):
            reads[i] = [now]
        count += new_per_sync
        sync += 1
        late = late_every and sync % late_every == 0
        now += interval * (2 if late else 1)
    return reads, requests


def _longest_gap(reads: dict[int, list[dt.datetime]], end: dt.datetime) -> dt.timedelta:
    """The longest time any id went without being read, up to `end`."""
    longest = dt.timedelta(0)
    for times in reads.values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        longest = max(longest, end - times[-1], *gaps)
    return longest


@pytest.mark.parametrize(
    "interval",
    [
        dt.timedelta(seconds=5),
        dt.timedelta(minutes=5),
        dt.timedelta(minutes=30),
        dt.timedelta(hours=6),
        dt.timedelta(hours=24),
    ],
)
def test_every_published_purchase_order_is_read_again_within_a_day(interval: dt.timedelta) -> None:
    reads, requests = _simulate(3_000, interval, days=3)
    # Up to the last sync of the run: an id is never left unread for more than a day.
    last_sync = max(t for times in reads.values() for t in times)
    assert _longest_gap(reads, last_sync) <= DAY
    per_day = requests / 3
    if interval < dt.timedelta(hours=24):
        # Paced, not "a page every sync": about one request per page of ids per cycle.
        assert per_day <= 1.5 * requests_per_cycle(3_000, PAGE) * DAY / RECHECK_CYCLE + 2


def test_new_purchase_orders_and_late_syncs_keep_the_promise() -> None:
    reads, _ = _simulate(10_000, dt.timedelta(minutes=30), days=3, new_per_sync=5, late_every=7)
    last_sync = max(t for times in reads.values() for t in times)
    assert _longest_gap(reads, last_sync) <= DAY


def test_ten_thousand_purchase_orders_at_the_default_interval_cost_few_requests() -> None:
    _, requests = _simulate(10_000, dt.timedelta(minutes=30), days=2)
    # 100 pages per 20 h cycle: about 120 requests a day, within a rate budget of ~250,000.
    assert 100 <= requests / 2 <= 150


def test_a_plan_reads_whole_pages_and_the_cursor_walks_down() -> None:
    plan = plan_recheck(RecheckCursor(), 10_000, T0, dt.timedelta(minutes=30), PAGE)
    assert plan.below_id is None
    assert plan.cycle_started_at == T0
    assert plan.quota % PAGE == 0
    assert plan.quota >= math.ceil(10_000 * 0.5 / 20)
    taken = list(range(10_000, 10_000 - plan.quota, -1))
    cursor = cursor_after(plan, taken)
    assert cursor == RecheckCursor(10_000 - plan.quota + 1, T0, plan.quota)
    # Committed page by page: after the first page, the cursor stands below it.
    assert cursor_after(plan, taken[:PAGE], partway=True) == RecheckCursor(
        10_000 - PAGE + 1, T0, PAGE
    )
    # Too soon for more: nothing read, the cursor stays.
    again = plan_recheck(cursor, 10_000, T0 + dt.timedelta(seconds=1), dt.timedelta(0), PAGE)
    assert again.quota == 0
    assert cursor_after(again, []) == cursor


def test_reaching_the_oldest_ends_the_cycle() -> None:
    plan = plan_recheck(RecheckCursor(50, T0, 9_900), 10_000, T0 + DAY, dt.timedelta(0), PAGE)
    assert plan.quota == 100
    assert cursor_after(plan, list(range(49, 0, -1))) == RecheckCursor()
    assert plan_recheck(RecheckCursor(), 0, T0, dt.timedelta(minutes=30), PAGE).quota == 0


def test_rechecked_purchase_orders_changed_and_deleted() -> None:
    known = {1: T0, 2: T0, 3: T0}
    found = [(1, T0), (2, T0 + dt.timedelta(seconds=1))]
    changes = recheck_changes(known, found)
    assert changes.changed_ids == (2,)
    assert changes.deleted_ids == (3,)


def test_a_changed_interval_moves_the_next_sync() -> None:
    last = T0
    # Shorter: due one new interval after the last sync started (at once if that is past).
    assert interval_after_change(last, T0 + dt.timedelta(minutes=30), 5) == T0 + dt.timedelta(
        seconds=5
    )
    # Longer: postponed.
    assert interval_after_change(last, T0 + dt.timedelta(minutes=30), 3600) == T0 + dt.timedelta(
        hours=1
    )
    # Never synced: the due time stays.
    assert interval_after_change(None, T0, 3600) == T0
