""" "Last change wins" on the write side (PRODUCT.md rule 13), decided field by field.

A write request carries Stockpit's value of each synced field, when the change was made in
Stockpit (`changed_at`) and what Stockpit last saw in Pennylane (its base). Outbound also
remembers what its own last write of the record left in Pennylane; the later of the two (by
Pennylane's `updated_at`) is the last known Pennylane state. Outbound reads the record now
(`current`, `updated_at`) and decides, for each field:

- Pennylane already holds Stockpit's value: nothing to write (SAME);
- Stockpit's value is the last known Pennylane value: Stockpit did not change the field, so
  Pennylane's value stands (KEEP);
- Pennylane's value is still the last known one: only Stockpit changed it (WRITE);
- both changed it (or nothing is known): the later change wins, Pennylane's if the record's
  `updated_at` is after `changed_at` (KEEP), else Stockpit's (WRITE).

On KEEP nothing is written: Stockpit takes Pennylane's value from the product or customer
changelog, where inventory decides with the same times (`inventory.domain.catalog`), and no side
echoes it back. Pennylane keeps one `updated_at` per record, not per field, and the times come
from two clocks: a clock skew moves the line between "earlier" and "later" by that much.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    SAME = "same"
    WRITE = "write"
    KEEP = "keep"  # Pennylane's value stands


@dataclass(frozen=True, slots=True)
class Seen:
    """Synced fields of a Pennylane record as seen at one time (None: time not known)."""

    fields: dict[str, Any]
    updated_at: datetime | None = None


def last_seen(base: Seen | None, ours: Seen | None) -> Seen | None:
    """The later of Stockpit's base and our last write (a base of unknown time is the older)."""
    if base is None or ours is None:
        return base or ours
    if base.updated_at is not None and ours.updated_at is not None:
        return base if base.updated_at > ours.updated_at else ours
    return ours if base.updated_at is None else base


def decide(
    name: str,
    wanted: Any,
    current: Any,
    seen: Seen | None,
    *,
    changed_at: datetime,
    updated_at: datetime,
) -> Verdict:
    """Whether Stockpit's value of one field goes to Pennylane (see the module docstring)."""
    if current == wanted:
        return Verdict.SAME
    if seen is not None and name in seen.fields:
        known = seen.fields[name]
        if wanted == known:
            return Verdict.KEEP
        if current == known:
            return Verdict.WRITE
    return Verdict.KEEP if updated_at > changed_at else Verdict.WRITE


@dataclass(frozen=True, slots=True)
class WrittenState:
    """What a write left in a Pennylane record: kept with the write, read by the next one."""

    pennylane_id: int
    seen: Seen

    def to_json(self) -> dict[str, Any]:
        updated_at = self.seen.updated_at
        return {
            "pennylane_id": self.pennylane_id,
            "updated_at": updated_at.isoformat() if updated_at is not None else None,
            "fields": self.seen.fields,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WrittenState:
        updated_at = data.get("updated_at")
        return cls(
            pennylane_id=int(data["pennylane_id"]),
            seen=Seen(
                fields=dict(data.get("fields") or {}),
                updated_at=dt_or_none(updated_at),
            ),
        )


def dt_or_none(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
