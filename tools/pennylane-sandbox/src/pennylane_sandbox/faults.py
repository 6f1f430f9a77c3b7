"""Fault injection: a seeded share of 429, 500, 503, slow responses and dropped connections."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Literal

from starlette.types import Send

from .config import FaultSettings

Failure = Literal["fault_429", "fault_500", "fault_503", "dropped"]


class ConnectionDroppedError(ConnectionError):
    """Raised where the server offers no socket to close (in-process ASGI transports)."""


class FaultInjector:
    """Draws faults from one seeded RNG so a run with the same requests fails the same way."""

    def __init__(self, settings: FaultSettings, seed: int) -> None:
        self.default = settings
        self.per_token: dict[str, FaultSettings] = {}
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(seed)

    def reseed(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def settings_for(self, token: str) -> FaultSettings:
        return self.per_token.get(token, self.default)

    def draw(self, token: str) -> tuple[Failure | None, float]:
        """The failure to inject (if any) and the delay to add before answering."""
        settings = self.settings_for(token)
        roll = self._rng.random()
        delay_roll = self._rng.random()
        failure: Failure | None = None
        threshold = 0.0
        shares: tuple[tuple[Failure, float], ...] = (
            ("fault_429", settings.rate_429),
            ("fault_500", settings.rate_500),
            ("fault_503", settings.rate_503),
            ("dropped", settings.rate_drop),
        )
        for name, share in shares:
            threshold += share
            if roll < threshold:
                failure = name
                break
        delay = settings.delay_seconds if delay_roll < settings.rate_delay else 0.0
        if failure is not None:
            self.injected[failure] += 1
        if delay:
            self.injected["delayed"] += 1
        return failure, delay


async def drop_connection(send: Send) -> None:
    """Closes the client's connection without a single response byte.

    Under uvicorn, `send` is a bound method of the request cycle that owns the socket's
    transport: aborting it makes the client see a closed connection (httpx raises
    RemoteProtocolError). Elsewhere there is no socket, so the request fails with an exception.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise ConnectionDroppedError("sandbox fault: connection dropped")
    transport.abort()
    # Let the protocol see connection_lost, so the server does not try to answer afterwards.
    for _ in range(3):
        await asyncio.sleep(0)
