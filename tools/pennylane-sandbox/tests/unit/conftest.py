"""Fixtures of the sandbox tests: the app in-process, and the app served by uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from pennylane_sandbox import SandboxApp, SandboxConfig, create_app
from pennylane_sandbox.serving import serve_in_thread

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


def serve(app: SandboxApp) -> Generator[Served, None, None]:
    with serve_in_thread(app) as base_url:
        yield Served(app, base_url)


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
    generators: list[Generator[Served, None, None]] = []

    def start(config: SandboxConfig) -> Served:
        generator = serve(create_app(config))
        generators.append(generator)
        return next(generator)

    yield start
    for generator in generators:
        generator.close()
