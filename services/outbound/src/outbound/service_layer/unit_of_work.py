"""Outbound's unit of work: one transaction over the write table (the convention of
`stockpit_runtime.unit_of_work`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stockpit_runtime import unit_of_work

from outbound.adapters.repository import WriteRepository


class UnitOfWork(unit_of_work.UnitOfWork):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | AsyncSession,
    ) -> None:
        super().__init__(sessions)
        self.writes = WriteRepository(self.session)
