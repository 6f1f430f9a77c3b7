"""A real sandbox served by uvicorn on a free loopback port, for client ⇄ sandbox tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pennylane_sandbox.app import SandboxApp, create_app
from pennylane_sandbox.config import SandboxConfig
from pennylane_sandbox.serving import serve_in_thread

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
def serve(config: SandboxConfig) -> Iterator[tuple[SandboxApp, str]]:
    app = create_app(config)
    with serve_in_thread(app) as root_url:
        yield app, root_url


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., ServedSandbox]]:
    with_stack: list[Any] = []

    def start(**config: Any) -> ServedSandbox:
        token = f"client-it-{next(_tokens)}-{time.monotonic_ns()}"
        manager = serve(SandboxConfig(tokens=[token], **config))
        app, root_url = manager.__enter__()
        with_stack.append(manager)
        return ServedSandbox(app, root_url, token)

    yield start
    for manager in reversed(with_stack):
        manager.__exit__(None, None, None)
