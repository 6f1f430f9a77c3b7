"""Outbound's Pennylane clients, one per tenant, share one connection pool."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from outbound.entrypoints import app
from outbound.entrypoints.app import OutboundService, OutboundSettings
from pydantic import SecretStr


async def test_every_tenants_client_goes_through_one_pool_with_its_own_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pools: list[httpx.AsyncClient] = []
    tokens: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        tokens.append(request.headers["Authorization"])
        company = {"id": 1, "name": "Acme", "reg_no": "sandbox-1"}
        return httpx.Response(200, json={"user": None, "company": company, "scopes": []})

    def pool(**options: Any) -> httpx.AsyncClient:
        pools.append(httpx.AsyncClient(transport=httpx.MockTransport(answer)))
        return pools[-1]

    monkeypatch.setattr(app, "shared_http_client", pool)
    settings = OutboundSettings(
        pennylane_tokens={"tenant-a": SecretStr("token-aaaa"), "tenant-b": SecretStr("token-bbbb")}
    )
    service = OutboundService(settings, tokens=None)
    for tenant, token in (("tenant-a", "token-aaaa"), ("tenant-b", "token-bbbb")):
        client = await service.pennylane_client(tenant, SecretStr(token))
        await client.get_me()
        await client.aclose()
    assert len(pools) == 1, "one pool for every tenant"
    assert tokens == ["Bearer token-aaaa", "Bearer token-bbbb"]
    assert not pools[0].is_closed, "a tenant's client does not close the shared pool"
    await pools[0].aclose()
