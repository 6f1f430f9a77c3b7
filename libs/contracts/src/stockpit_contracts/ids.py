"""Ids of events, ledger entries and records, and their texts.

`new_uuid` is the standard library's `uuid4`: one name for "a new random id" everywhere.
"""

from __future__ import annotations

from uuid import UUID
from uuid import uuid4 as new_uuid

__all__ = ["UUID_TEXTS", "UuidTexts", "new_uuid", "uuid_text"]


class UuidTexts(dict[UUID, str]):
    """Texts of UUIDs, remembered (at most `kept`, then emptied): `str(uuid)` formats 32 hex
    digits each time (~0.7 µs), and the same ids are written many times per batch."""

    def __init__(self, kept: int) -> None:
        super().__init__()
        self._kept = kept

    def __missing__(self, uuid: UUID) -> str:
        if len(self) >= self._kept:
            self.clear()
        text = self[uuid] = str(uuid)
        return text


# About 300 bytes an id: at most ~15 MB, for the ids a service keeps writing (products,
# locations, orders); ids that never recur must not be passed here. Code that cannot afford a
# call reads it with `UUID_TEXTS.get(uuid) or uuid_text(uuid)`.
UUID_TEXTS = UuidTexts(kept=50_000)


def uuid_text(uuid: UUID) -> str:
    """`str(uuid)`, remembered: for ids that recur (products, locations, orders) only."""
    return UUID_TEXTS[uuid]
