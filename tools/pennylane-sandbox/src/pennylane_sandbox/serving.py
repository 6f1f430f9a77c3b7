"""Serving the sandbox over real HTTP from inside a test or benchmark process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from .app import SandboxApp


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
