"""Where each of a tenant's streams stands, and how it moves. Pure: no I/O, no clock.

A changelog stream goes NEW → SCANNING → FOLLOWING:
- NEW: nothing read yet (first sync), or the changelog watermark left Pennylane's 4-week window.
  Before the full scan starts, the poller notes Pennylane's time less a margin (`resume_from`):
  every change after it will be read from the changelog once the scan is over, and every change
  before it is already in what the scan reads, so nothing falls between the two.
- SCANNING: a full list by ascending id; `after_id` is the last id handled (restart point).
- FOLLOWING: the changelog from `changelog_from`. Pennylane's `start_date` is inclusive, so the
  events AT the watermark instant come again on every read; the ids of the records whose events
  at that instant were already handled (`seen_at_watermark`) are remembered and those events are
  skipped, so an idle sync publishes nothing. An event at that instant for a record not in the
  set (one that entered the pipeline late) is still handled.
Each state change is committed in the same transaction as the events it covers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from stockpit_pennylane.client.models import ChangelogEvent


class Stream(StrEnum):
    PRODUCTS = "products"
    CUSTOMERS = "customers"
    CUSTOMER_INVOICES = "customer_invoices"
    PURCHASE_ORDERS = "purchase_orders"


class Phase(StrEnum):
    NEW = "new"
    SCANNING = "scanning"
    FOLLOWING = "following"


@dataclass(frozen=True, slots=True)
class StreamState:
    phase: Phase = Phase.NEW
    # SCANNING: last id handled by the full scan. Purchase orders: the id watermark.
    after_id: int = 0
    # Where the changelog resumes (inclusive); None = from the oldest change Pennylane retains.
    changelog_from: dt.datetime | None = None
    # Record ids whose events at exactly `changelog_from` were handled: skipped when read again.
    seen_at_watermark: frozenset[int] = frozenset()
    # Pennylane's time when the full scan started, while the changelog is still before it: the
    # follow's events from before it were read by the scan or left out by it on purpose.
    scan_started_at: dt.datetime | None = None

    def scan_started(
        self,
        resume_from: dt.datetime | None,
        seen: Iterable[int] = (),
        started_at: dt.datetime | None = None,
    ) -> StreamState:
        """`seen`: the records changed at `resume_from`; the scan that follows reads their state
        after those changes, so the changelog need not hand them over again. `started_at`:
        Pennylane's time at the scan's start (after `resume_from`, which is a margin before)."""
        return StreamState(Phase.SCANNING, 0, resume_from, frozenset(seen), started_at)

    def scanned_through(self, last_id: int) -> StreamState:
        return replace(self, after_id=max(self.after_id, last_id))

    def scan_finished(self) -> StreamState:
        return StreamState(
            Phase.FOLLOWING, 0, self.changelog_from, self.seen_at_watermark, self.scan_started_at
        )

    def is_new(self, event: ChangelogEvent) -> bool:
        """False for an event at the watermark instant whose record was already handled."""
        return not (
            event.processed_at == self.changelog_from and event.id in self.seen_at_watermark
        )

    def followed_through(self, events: Iterable[ChangelogEvent]) -> StreamState:
        """The watermark after handling `events`: their newest instant, with the records seen at
        it (added to those already seen when the instant did not move)."""
        newest = self.changelog_from
        seen = set(self.seen_at_watermark)
        for event in events:
            if newest is None or event.processed_at > newest:
                newest, seen = event.processed_at, {event.id}
            elif event.processed_at == newest:
                seen.add(event.id)
        scan_started_at = self.scan_started_at
        if scan_started_at is not None and newest is not None and newest >= scan_started_at:
            # Every later event was made after the scan started: none of them is the scan's.
            scan_started_at = None
        return replace(
            self,
            changelog_from=newest,
            seen_at_watermark=frozenset(seen),
            scan_started_at=scan_started_at,
        )

    def changelog_expired(self) -> StreamState:
        """The watermark fell out of the 4-week window: changes may be lost, re-scan in full."""
        return StreamState()


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """One changelog page reduced to what to do: a record's last operation in the page wins."""

    upserted_ids: tuple[int, ...]
    deleted_ids: tuple[int, ...]
    newest_processed_at: dt.datetime | None

    @classmethod
    def from_events(cls, events: Iterable[ChangelogEvent]) -> ChangeSet:
        """Pass only events not handled before (see `StreamState.is_new`)."""
        last_operation: dict[int, str] = {}
        newest: dt.datetime | None = None
        for event in events:
            # Re-inserting keeps the first position: dicts remember insertion order.
            last_operation.pop(event.id, None)
            last_operation[event.id] = event.operation
            newest = event.processed_at if newest is None else max(newest, event.processed_at)
        return cls(
            upserted_ids=tuple(i for i, op in last_operation.items() if op != "delete"),
            deleted_ids=tuple(i for i, op in last_operation.items() if op == "delete"),
            newest_processed_at=newest,
        )


@dataclass(frozen=True, slots=True)
class PurchaseOrderChanges:
    changed_ids: tuple[int, ...]
    deleted_ids: tuple[int, ...]


def purchase_order_changes(
    window: Sequence[tuple[int, dt.datetime]],
    known: Mapping[int, dt.datetime],
    *,
    window_is_complete: bool,
) -> PurchaseOrderChanges:
    """Compare a re-scan of the newest purchase orders with what was published.

    Pennylane has no changelog for commercial documents and no `updated_at` filter (NOTES §7), so
    the newest N are listed again: a known one whose `updated_at` moved has changed, and a known
    one within the window's id range that is missing was deleted. `window_is_complete` says the
    listing reached the oldest purchase order, so the range extends down to id 0.
    """
    seen = dict(window)
    changed = tuple(
        sorted(i for i, updated_at in seen.items() if i in known and known[i] != updated_at)
    )
    if not seen:
        lowest = 0 if window_is_complete else None
    else:
        lowest = 0 if window_is_complete else min(seen)
    if lowest is None:
        return PurchaseOrderChanges(changed, ())
    highest = max(seen, default=max(known, default=0))
    deleted = tuple(sorted(i for i in known if lowest <= i <= highest and i not in seen))
    return PurchaseOrderChanges(changed, deleted)
