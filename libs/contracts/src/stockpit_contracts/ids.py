"""Random (version 4) UUIDs, made for the hot paths that mint one per ledger entry and message.

`uuid.uuid4()` makes a system call for its 16 random bytes and runs `UUID.__init__`'s argument
checks: about 2.2 µs, several times per invoice line. Here the random bits come from
`os.urandom` (the same source) 512 ids at a time, and the UUID is built from its integer
directly: about 0.75 µs. The ids are the same kind of ids: 122 random bits, version 4, RFC 4122
variant.
"""

from __future__ import annotations

import os
from uuid import UUID, SafeUUID

_IDS_PER_DRAW = 512
# Clear the version nibble and the two variant bits, then set version 4 and variant 10xx.
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_SET = (4 << 76) | (0x8000 << 48)

# Drawn values waiting to be used. `list.pop` is atomic, so two threads never share a value.
_drawn: list[int] = []


def _draw() -> None:
    raw = os.urandom(16 * _IDS_PER_DRAW)
    _drawn.extend(
        (int.from_bytes(raw[start : start + 16], "big") & _CLEAR) | _SET
        for start in range(0, len(raw), 16)
    )


# A forked child must not hand out the ids its parent will also hand out.
os.register_at_fork(after_in_child=_drawn.clear)

_new_object = object.__new__
_set_slot = object.__setattr__


def new_uuid() -> UUID:
    """A new random UUID (version 4), as `uuid.uuid4()` makes, faster."""
    try:
        value = _drawn.pop()
    except IndexError:
        _draw()
        value = _drawn.pop()
    # UUID is immutable through its own __setattr__; these are its two slots.
    uuid = _new_object(UUID)
    _set_slot(uuid, "int", value)
    _set_slot(uuid, "is_safe", SafeUUID.unknown)
    return uuid


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
