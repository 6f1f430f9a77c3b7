"""The poller's unit of work (the convention of `stockpit_runtime.unit_of_work`): one
transaction over its schedule and sync state (`adapters.state`, on `uow.session`), with the
connection registry beside it (`uow.connections`; the registry commits its own writes, each
idempotent, so a command applied twice changes nothing)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stockpit_connections import ConnectionRegistry
from stockpit_runtime import unit_of_work


class UnitOfWork(unit_of_work.UnitOfWork):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | AsyncSession,
        connections: ConnectionRegistry,
    ) -> None:
        super().__init__(sessions)
        self.connections = connections
