"""A real sandbox served by uvicorn on a free loopback port, for client ⇄ sandbox tests."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from stockpit_pennylane.sandbox.app import SandboxApp, create_app
from stockpit_pennylane.sandbox.config import SandboxConfig

_tokens = itertools.count()


@dataclass
class ServedSandbox:
    app: SandboxApp
    root_url: str
    token: str

    @property
    def api_url(self) -> str:
        return self.root_url + "/api/external/v2"

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        response = httpx.request(method, self.root_url + "/_sandbox" + path, json=json, timeout=60)
        response.raise_for_status()
        return response.json() if response.content else None


@contextmanager
def serve(config: SandboxConfig) -> Iterator[tuple[SandboxApp, int]]:
    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:  # readiness wait, not an assertion
        time.sleep(0.01)
    try:
        yield app, int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., ServedSandbox]]:
    with_stack: list[Any] = []

    def start(**config: Any) -> ServedSandbox:
        token = f"client-it-{next(_tokens)}-{time.monotonic_ns()}"
        manager = serve(SandboxConfig(tokens=[token], **config))
        app, port = manager.__enter__()
        with_stack.append(manager)
        return ServedSandbox(app, f"http://127.0.0.1:{port}", token)

    yield start
    for manager in reversed(with_stack):
        manager.__exit__(None, None, None)
