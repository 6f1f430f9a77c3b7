"""The shared pool's connection keeping (`LeanConnectionPool`), against a real local HTTP server:
connections are reused, bounded, trimmed to the keep-alive limit, and one the server closed is
never reused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from stockpit_pennylane.client import shared_http_client
from stockpit_pennylane.client.pool import LeanConnectionPool

BODY = b'{"ok": true}'


@dataclass
class Server:
    url: str
    # Writers of the connections still open, in the order they were accepted.
    open: list[asyncio.StreamWriter] = field(default_factory=list)
    accepted: int = 0
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server("")
    state.hold.set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.accepted += 1
        state.open.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if b"/slow" in head.split(b"\r\n", 1)[0]:
                    state.waiting += 1
                    await state.hold.wait()
                    state.waiting -= 1
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if writer in state.open:
                state.open.remove(writer)
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}"
    async with listener:
        yield state


def _pool(client: httpx.AsyncClient) -> LeanConnectionPool:
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert isinstance(pool, LeanConnectionPool)
    return pool


async def _until(condition: object, timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_sequential_requests_reuse_one_connection(server: Server) -> None:
    async with shared_http_client() as client:
        for _ in range(20):
            assert (await client.get(f"{server.url}/a")).json() == {"ok": True}
        assert len(_pool(client).connections) == 1
    assert server.accepted == 1


async def test_concurrent_requests_open_at_most_max_connections_then_keep_the_idle_limit(
    server: Server,
) -> None:
    server.hold.clear()
    async with shared_http_client(max_connections=30) as client:
        slow = [asyncio.create_task(client.get(f"{server.url}/slow")) for _ in range(40)]
        await _until(lambda: server.waiting == 30)
        assert len(_pool(client).connections) == 30, "ten requests wait for a connection"
        server.hold.set()
        answers = await asyncio.gather(*slow)
        assert all(a.status_code == 200 for a in answers)
        assert server.accepted == 30
        # Idle connections beyond the keep-alive limit (20) are closed.
        await client.get(f"{server.url}/a")
        assert len(_pool(client).connections) == 20
        await _until(lambda: len(server.open) == 20)


async def test_a_connection_the_server_closed_is_not_reused(server: Server) -> None:
    async with shared_http_client() as client:
        await client.get(f"{server.url}/a")
        server.open[0].close()
        await _until(lambda: not server.open)
        await asyncio.sleep(0.05)  # the FIN reaches the client's socket
        assert (await client.get(f"{server.url}/a")).status_code == 200
        assert server.accepted == 2
        assert len(_pool(client).connections) == 1
