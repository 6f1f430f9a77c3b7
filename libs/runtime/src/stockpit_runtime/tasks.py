"""Stopping background tasks without hanging, and saying where a stuck one waits.

A service stops its tasks (syncs, the outbox relay) by cancelling them and waiting. A task that
does not end (a wait that ignores cancellation, a lock held elsewhere) would hold the whole
shutdown: the orchestrator then kills the process after its grace period, and nobody learns
why. `stop_tasks` waits a bounded time and logs each task still running with its await chain.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Collection
from typing import Any

from stockpit_runtime.logging import get_logger

log = get_logger(__name__)


def await_chain(awaitable: object) -> list[str]:
    """Where `awaitable` waits, outermost first: the frames of the coroutines and async
    generators it awaits, down to the future at the bottom. (`Task.print_stack` shows only the
    task's own coroutine.) Wrappers without a frame, such as an async generator's `asend`, are
    followed through what they reference."""
    lines: list[str] = []
    seen: set[int] = set()
    current: object | None = awaitable
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frame = _first_attribute(current, ("cr_frame", "ag_frame", "gi_frame"))
        if frame is not None:
            code = frame.f_code
            lines.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
            current = _first_attribute(current, ("cr_await", "ag_await", "gi_yieldfrom"))
            continue
        referents = gc.get_referents(current)
        inner = [r for r in referents if _is_suspendable(r)]
        if not inner:
            future = next((r for r in referents if isinstance(r, asyncio.Future)), current)
            lines.append(f"awaiting {future!r}"[:300])
            break
        current = inner[0]
    return lines


def _first_attribute(value: object, names: tuple[str, ...]) -> Any:
    return next((found for name in names if (found := getattr(value, name, None))), None)


def _is_suspendable(value: object) -> bool:
    return inspect.iscoroutine(value) or inspect.isasyncgen(value) or inspect.isgenerator(value)


async def stop_tasks(tasks: Collection[asyncio.Task[Any]], *, timeout_s: float, what: str) -> None:
    """Cancel `tasks` and wait until they end, at most `timeout_s`. A task still running then
    is logged (an error, with where it waits) and left behind: the caller goes on stopping."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        log.error(
            f"{what}: a task did not stop when cancelled",
            task=task.get_name(),
            waits_in=await_chain(task.get_coro()),
            timeout_s=timeout_s,
        )
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error(
                f"{what}: a task failed while stopping",
                task=task.get_name(),
                exc_info=task.exception(),
            )
