"""The unit of work every service's service layer uses (after cosmicpython's).

A unit of work is one database transaction, as an async context manager: a service subclasses
`UnitOfWork` with its repositories (made on `self.session`) and, when it buffers writes, a
`_write()` that sends them. Handlers are functions of (command, unit of work) that use an open
unit of work; whoever calls them enters it, commits it, and retries it:

    async with OutboundUnitOfWork(sessions) as uow:
        await handlers.accept_request(command, uow)
        await uow.commit()

    # or, retried whole on a deadlock or a serialization failure:
    await run_in_transaction(lambda: OutboundUnitOfWork(sessions), partial(handler, command))

Leaving the block without `commit()` (an exception, a read) rolls everything back.

A unit of work made on a *session* instead of a session factory joins a transaction someone
else owns: the reliable consumer's, which holds the inbox claim of the event. `commit()` then
sends the buffered writes and the transaction commits (or rolls back, inbox claim included)
when the consumer's block ends, so a Kafka handler keeps its once-only guarantee; the consumer's
own attempts are its retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")
U = TypeVar("U", bound="UnitOfWork")

TRANSACTION_ATTEMPTS = 5
# Deadlock detected, serialization failure: PostgreSQL chose this transaction as the victim.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


class UnitOfWork:
    """One transaction: enter it, use its repositories, `commit()`; anything else rolls back."""

    session: AsyncSession

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | AsyncSession,
    ) -> None:
        """`sessions`: the service's session factory (this unit of work owns its transaction)
        or an open session (it joins that session's transaction, see the module's docstring)."""
        if isinstance(sessions, AsyncSession):
            self.session, self._owns = sessions, False
        else:
            # No I/O yet: the session connects and begins with its first statement.
            self.session, self._owns = sessions(), True
        self._committed = False

    @property
    def owns_transaction(self) -> bool:
        return self._owns

    async def __aenter__(self) -> Self:
        self._committed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._owns:
            return  # the owner of the transaction ends it
        try:
            if not self._committed:
                await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        """Send the buffered writes, then commit (when this unit of work owns the transaction)."""
        await self._write()
        if self._owns:
            await self.session.commit()
            self._committed = True

    async def rollback(self) -> None:
        if self._owns:
            await self.session.rollback()

    async def _write(self) -> None:
        """Writes a subclass buffered until the end of the unit of work (none by default)."""


def retryable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


async def run_in_transaction(
    new_uow: Callable[[], U],
    work: Callable[[U], Awaitable[T]],
    *,
    attempts: int = TRANSACTION_ATTEMPTS,
) -> T:
    """`work` in a unit of work of its own, committed; on a deadlock or a serialization failure
    it runs again whole in a new one (at most `attempts` times), so `work` must not have done
    anything outside the database before it returns."""
    for attempt in range(1, attempts + 1):
        try:
            async with new_uow() as uow:
                if not uow.owns_transaction:
                    raise TypeError("a joined unit of work is retried by its transaction's owner")
                result = await work(uow)
                await uow.commit()
        except DBAPIError as exc:
            if attempt == attempts or not retryable(exc):
                raise
            await asyncio.sleep(0.01 * attempt)
        else:
            return result
    raise AssertionError("unreachable: the last attempt returns or raises")
