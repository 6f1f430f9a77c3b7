"""Replaying a dead-lettered write: it goes back to pending, at the head of its record."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from outbound.adapters import repository


class ReplayResult(StrEnum):
    REPLAYED = "replayed"
    NOT_FOUND = "not_found"
    ALREADY_REPLAYED = "already_replayed"


async def replay(session: AsyncSession, dead_letter_id: int) -> ReplayResult:
    letter = await repository.lock_dead_letter(session, dead_letter_id)
    if letter is None:
        return ReplayResult.NOT_FOUND
    now = dt.datetime.now(dt.UTC)
    if letter.replayed_at is not None or not await repository.reopen_write(
        session, letter.write_id, now
    ):
        return ReplayResult.ALREADY_REPLAYED
    await repository.mark_replayed(session, dead_letter_id, now)
    return ReplayResult.REPLAYED
