"""Reading one page ahead during a scan: the next page's request overlaps the current page's
processing and commit, but pages still reach the caller one at a time and in order, a failed read
surfaces only once the pages before it were taken, and a sync that stops early leaves no read
behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest
from poller.service_layer.sync import read_ahead

HANG_GUARD_S = 30  # a read that is never sent fails the test instead of hanging it


class Pages:
    """A page source whose reads the test releases one by one, recording what was asked."""

    def __init__(self, count: int, *, failing: int | None = None) -> None:
        self.count = count
        self.failing = failing
        self.started: list[int] = []
        self.release = {n: asyncio.Event() for n in range(1, count + 1)}
        self.read_started = {n: asyncio.Event() for n in range(1, count + 1)}
        self.cancelled: list[int] = []
        self.closed = False

    async def __call__(self) -> AsyncIterator[int]:
        try:
            for n in range(1, self.count + 1):
                self.started.append(n)
                self.read_started[n].set()
                try:
                    await self.release[n].wait()
                except asyncio.CancelledError:
                    self.cancelled.append(n)
                    raise
                if n == self.failing:
                    raise RuntimeError(f"page {n} could not be read")
                yield n
        finally:
            self.closed = True


async def _settle() -> None:
    """Lets every ready task run until none is left to run."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_the_next_page_is_read_while_the_caller_holds_one_and_never_two_ahead() -> None:
    source = Pages(3)
    async with aclosing(read_ahead(source())) as pages:
        source.release[1].set()
        assert await anext(pages) == 1
        # The caller holds page 1 (processing and committing it): page 2 is already asked for.
        await asyncio.wait_for(source.read_started[2].wait(), HANG_GUARD_S)
        source.release[2].set()
        await _settle()
        assert source.started == [1, 2], "never more than one page ahead"
        assert await anext(pages) == 2
        await source.read_started[3].wait()
        source.release[3].set()
        assert await anext(pages) == 3
        with pytest.raises(StopAsyncIteration):
            await anext(pages)
    assert source.closed


async def test_a_failed_read_surfaces_only_after_the_pages_before_it() -> None:
    source = Pages(3, failing=2)
    for n in (1, 2):
        source.release[n].set()
    taken: list[int] = []

    async def scan() -> None:
        async with aclosing(read_ahead(source())) as pages:
            async for page in pages:
                await _settle()  # the failed read of page 2 is done while page 1 is held
                taken.append(page)

    with pytest.raises(RuntimeError, match="page 2"):
        await scan()
    assert taken == [1]
    assert source.started == [1, 2]


async def test_stopping_early_cancels_the_read_in_flight_and_closes_the_source() -> None:
    source = Pages(3)
    source.release[1].set()

    async def scan() -> None:
        async with aclosing(read_ahead(source())) as pages:
            async for _page in pages:
                await asyncio.wait_for(source.read_started[2].wait(), HANG_GUARD_S)
                raise LookupError("the sync stops here (a lost lease, a disconnect)")

    with pytest.raises(LookupError):
        await scan()
    assert source.cancelled == [2]
    assert source.closed
    assert source.started == [1, 2]
