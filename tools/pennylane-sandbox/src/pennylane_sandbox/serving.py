"""Serving the sandbox over real HTTP from inside a test or benchmark process."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn

from .app import SandboxApp

# A request still running when a test ends (a client that went away mid-request) must not
# hold the server's shutdown, hence the test's teardown, for ever.
SHUTDOWN_GRACE_S = 5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_in_thread(app: SandboxApp, attempts: int = 5) -> Iterator[str]:
    """Run uvicorn on a free loopback port in a thread; yields the root URL.

    uvicorn binds host/port itself: a pre-bound socket handed to it made every request
    markedly slower, which the fault-share tests cannot afford. A port taken between the
    probe and uvicorn's bind is retried.
    """
    for _attempt in range(attempts):
        port = _free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="critical",
            access_log=False,
            date_header=False,  # the app sends its own, on the sandbox's clock
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started and thread.is_alive():
            thread.join(0.01)
        if server.started:
            break
    else:
        raise RuntimeError("uvicorn did not start on a free port")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@asynccontextmanager
async def serve_in_loop(app: SandboxApp) -> AsyncIterator[str]:
    """Run uvicorn in the running event loop on a free loopback port; yields the root URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        date_header=False,  # the app sends its own, on the sandbox's clock
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # uvicorn's own error
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
