"""The poller process's own parts beside `ServiceRuntime`, typed (its routes and subscribers
reach them through this object)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_connections import ConnectionRegistry, TokenCipher
from stockpit_runtime.service import ServiceRuntime

from poller.service_layer.scheduler import Scheduler, SchedulerConfig
from poller.service_layer.unit_of_work import UnitOfWork


class PollerService:
    """Made by `create_app`; `setup` (given the runtime) makes the registry and scheduler."""

    runtime: ServiceRuntime
    registry: ConnectionRegistry
    scheduler: Scheduler

    def __init__(self, cipher: TokenCipher, connections_schema: str, config: SchedulerConfig):
        self._cipher = cipher
        self._connections_schema = connections_schema
        self._config = config

    def setup(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.registry = ConnectionRegistry(
            runtime.engine, self._cipher, schema=self._connections_schema
        )
        self.scheduler = Scheduler(runtime.sessions, self.registry, self._config)

    @property
    def topic_prefix(self) -> str:
        return self.runtime.settings.topic_prefix

    def uow(self) -> UnitOfWork:
        """A unit of work of its own transaction (HTTP commands and reads)."""
        return UnitOfWork(self.runtime.sessions, self.registry)

    def joined_uow(self, session: AsyncSession) -> UnitOfWork:
        """A unit of work in the reliable consumer's transaction (Kafka subscribers)."""
        return UnitOfWork(session, self.registry)
