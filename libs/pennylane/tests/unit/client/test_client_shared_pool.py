"""Many clients on one shared pool: each request carries its own client's token, the pool holds
none, and closing a client leaves the pool to the others."""

import asyncio

import httpx
import pytest
from stockpit_pennylane.client import API_CHANGES_HEADER, PennylaneClient, shared_http_client
from stockpit_pennylane.client.ratelimit import RateLimit

UNPACED = RateLimit(requests=10_000, window_s=5.0, safety_margin_s=0.0)
BASE = "https://pennylane.test/api/external/v2"


def _me(request: httpx.Request) -> httpx.Response:
    token = request.headers["authorization"].removeprefix("Bearer ")
    return httpx.Response(
        200,
        json={
            "user": None,
            "company": {"id": int(token[-1]), "name": token, "reg_no": "x"},
            "scopes": [],
        },
    )


async def test_each_request_on_the_shared_pool_carries_its_clients_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _me(request)

    pool = shared_http_client(transport=httpx.MockTransport(handler))
    first = PennylaneClient("token-of-tenant-1", base_url=BASE, http=pool, rate_limit=UNPACED)
    second = PennylaneClient("token-of-tenant-2", base_url=BASE, http=pool, rate_limit=UNPACED)
    answers = await asyncio.gather(*(c.get_me() for c in (first, second) * 5))
    assert [a.company.id for a in answers] == [1, 2] * 5
    assert len(seen) == 10
    assert all(str(r.url) == f"{BASE}/me" for r in seen)
    assert all(r.headers[API_CHANGES_HEADER] == "true" for r in seen)
    assert "authorization" not in pool.headers, "the pool itself holds no token"

    await first.aclose()
    assert not pool.is_closed, "a client does not close the pool it borrowed"
    assert (await second.get_me()).company.id == 2
    await pool.aclose()


async def test_before_send_can_stop_a_request() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return _me(request)

    class Stopped(Exception):
        pass

    allowed = [True]

    def before_send() -> None:
        if not allowed[0]:
            raise Stopped

    async with shared_http_client(transport=httpx.MockTransport(handler)) as pool:
        client = PennylaneClient(
            "token-of-tenant-3",
            base_url=BASE,
            http=pool,
            rate_limit=UNPACED,
            before_send=before_send,
        )
        await client.get_me()
        allowed[0] = False
        with pytest.raises(Stopped):
            await client.get_me()
    assert len(sent) == 1


def test_a_shared_pool_brings_its_own_transport() -> None:
    pool = shared_http_client()
    with pytest.raises(ValueError, match="shared pool"):
        PennylaneClient(
            "token-of-tenant-4",
            http=pool,
            transport=httpx.MockTransport(_me),
        )


async def test_the_shared_pool_sends_no_cookie_an_answer_set() -> None:
    """One tenant's answer must not set what the next tenant's request carries."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        response = _me(request)
        response.headers["set-cookie"] = "session=of-the-tenant-before; Path=/"
        return response

    async with shared_http_client(transport=httpx.MockTransport(handler)) as pool:
        first = PennylaneClient("token-of-tenant-1", base_url=BASE, http=pool, rate_limit=UNPACED)
        second = PennylaneClient("token-of-tenant-2", base_url=BASE, http=pool, rate_limit=UNPACED)
        await first.get_me()
        await second.get_me()
        assert not pool.cookies
    assert [r.headers.get("cookie") for r in sent] == [None, None]
