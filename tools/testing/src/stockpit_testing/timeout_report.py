"""When pytest-timeout stops a test, say where its asyncio tasks were waiting.

pytest-timeout's own report dumps the threads' stacks; in an asyncio test the main thread is
always in the event loop's `select`, which tells nothing. A hung test (or fixture teardown)
waits in some task: this plugin adds every task's stack to the failure, innermost frames last.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType
from typing import Any

import pytest
import pytest_timeout
from stockpit_runtime.tasks import await_chain


def pending_tasks_report(limit: int = 60) -> str:
    """Every task of the running event loop, and where it waits (empty outside a loop)."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return ""
    tasks = sorted(asyncio.all_tasks(loop), key=lambda task: task.get_name())
    out = [f"{len(tasks)} asyncio tasks pending:"]
    for task in tasks[:limit]:
        out.append(f"{task.get_name()}:")
        out.extend(f"  {line}" for line in await_chain(task.get_coro()))
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
