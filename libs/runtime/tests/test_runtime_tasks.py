"""Stopping tasks: a bounded wait, and a task that does not stop is named with where it waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from stockpit_runtime.tasks import await_chain, stop_tasks
from structlog.testing import capture_logs


async def _sleeps() -> None:
    await asyncio.sleep(3600)


async def test_cancelled_tasks_are_awaited_and_nothing_is_logged() -> None:
    tasks = [asyncio.create_task(_sleeps()) for _ in range(3)]
    await asyncio.sleep(0)
    with capture_logs() as logs:
        await stop_tasks(tasks, timeout_s=5, what="test")
    assert all(task.cancelled() for task in tasks)
    assert logs == []


async def _ignores_cancellation(released: asyncio.Event) -> None:
    while not released.is_set():
        try:
            await released.wait()
        except asyncio.CancelledError:
            continue


async def test_a_task_that_ignores_cancellation_is_logged_with_where_it_waits() -> None:
    released = asyncio.Event()
    stubborn = asyncio.create_task(_ignores_cancellation(released), name="stubborn")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        await stop_tasks([stubborn], timeout_s=0.2, what="test stop")
    assert not stubborn.done()
    [entry] = logs
    assert entry["log_level"] == "error"
    assert entry["task"] == "stubborn"
    assert any("_ignores_cancellation" in line for line in entry["waits_in"])
    assert any("in wait" in line for line in entry["waits_in"]), entry["waits_in"]
    released.set()
    await stubborn


async def test_a_task_that_fails_while_stopping_is_logged() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.create_task(fails_on_cancel(), name="failing")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        await stop_tasks([task], timeout_s=5, what="test stop")
    assert [entry["task"] for entry in logs] == ["failing"]
    assert "failed while stopping" in logs[0]["event"]


async def test_the_await_chain_goes_through_an_async_generator() -> None:
    gate = asyncio.Event()

    async def pages() -> AsyncIterator[int]:
        await gate.wait()
        yield 1

    async def reader() -> int:
        async for page in pages():
            return page
        return 0

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    chain = await_chain(task.get_coro())
    names = [line.rsplit(" in ", 1)[-1] for line in chain if " in " in line]
    assert names[:3] == ["reader", "pages", "wait"], chain
    assert chain[-1].startswith("awaiting <Future pending")
    gate.set()
    assert await task == 1
