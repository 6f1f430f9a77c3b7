"""When pytest-timeout stops a test, say where its asyncio tasks were waiting.

pytest-timeout's own report dumps the threads' stacks; in an asyncio test the main thread is
always in the event loop's `select`, which tells nothing. A hung test (or fixture teardown)
waits in some task: this plugin adds every task's stack to the failure, innermost frames last.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import signal
import threading
from types import FrameType
from typing import Any

import pytest
import pytest_timeout


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
            lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}")
            current = _first_attribute(current, ("cr_await", "ag_await", "gi_yieldfrom"))
            continue
        referents = gc.get_referents(current)
        inner = [r for r in referents if _is_suspendable(r)]
        if not inner:
            future = next((r for r in referents if isinstance(r, asyncio.Future)), current)
            lines.append(f"  awaiting {future!r}"[:300])
            break
        current = inner[0]
    return lines


def _first_attribute(value: object, names: tuple[str, ...]) -> Any:
    return next((found for name in names if (found := getattr(value, name, None))), None)


def _is_suspendable(value: object) -> bool:
    return inspect.iscoroutine(value) or inspect.isasyncgen(value) or inspect.isgenerator(value)


def pending_tasks_report(limit: int = 60) -> str:
    """Every task of the running event loop, and where it waits (empty outside a loop)."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return ""
    tasks = sorted(asyncio.all_tasks(loop), key=lambda task: task.get_name())
    out = [f"{len(tasks)} asyncio tasks pending:"]
    for task in tasks[:limit]:
        out.append(f"{task.get_name()}:")
        out.extend(await_chain(task.get_coro()))
    return "\n".join(out)


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    if settings.method != "signal" or threading.current_thread() is not threading.main_thread():
        return None  # pytest-timeout's own timer

    def handler(signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True
        report = pending_tasks_report()
        if report:
            item.add_report_section("call", "asyncio tasks at the timeout", report)
        pytest_timeout.timeout_sigalrm(item, settings)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel  # type: ignore[attr-defined]
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    return True
