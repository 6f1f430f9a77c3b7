"""Fixtures of the sandbox tests: the app in-process, and the app served by uvicorn."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from stockpit_pennylane.sandbox import SandboxApp, SandboxConfig, create_app

TOKEN_A = "tok-company-a"
TOKEN_B = "tok-company-b"
API = "/api/external/v2"


@pytest.fixture
def tokens() -> tuple[str, str]:
    """The tokens of the two companies of the `app` fixture."""
    return TOKEN_A, TOKEN_B


@dataclass
class Served:
    app: SandboxApp
    base_url: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(app: SandboxApp) -> Iterator[Served]:
    """Runs uvicorn on a free loopback port in a thread until the generator is closed.

    uvicorn binds host/port itself: handing it a pre-bound socket made every request ~40 ms
    slower here (measured), which the fault-share tests cannot afford.
    """
    for _attempt in range(5):
        port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="critical", access_log=False
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
        yield Served(app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def app() -> SandboxApp:
    return create_app(SandboxConfig(tokens=[TOKEN_A, TOKEN_B], rate_limit=10_000))


@pytest.fixture
async def client(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    """In-process client of company A (rate limit raised so unit checks never hit it)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sandbox.test",
        headers={"Authorization": f"Bearer {TOKEN_A}"},
    ) as http:
        yield http


@pytest.fixture
def served_factory() -> Iterator[Callable[[SandboxConfig], Served]]:
    """Call `served_factory(config)` to get a Served sandbox; all are stopped at teardown."""
    generators: list[Iterator[Served]] = []

    def start(config: SandboxConfig) -> Served:
        generator = serve(create_app(config))
        generators.append(generator)
        return next(generator)

    yield start
    for generator in generators:
        generator.close()
