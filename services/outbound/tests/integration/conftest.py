"""Outbound against a real sandbox (uvicorn on a free loopback port), Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pennylane_sandbox import FaultSettings, SandboxApp, SandboxConfig, create_app
from pennylane_sandbox.serving import serve_in_thread
from pydantic import SecretStr
from stockpit_contracts import Envelope, Payload, new_event, partition_key
from stockpit_contracts.payloads.outbound import (
    CustomerWriteRequested,
    ProductChangeRequested,
    ReceiptSendRequested,
)
from stockpit_contracts.topics import OUTBOUND_REQUESTS
from stockpit_runtime.kafka_security import kafka_options

_tokens = itertools.count()


@dataclass
class ServedSandbox:
    app: SandboxApp
    root_url: str
    tokens: dict[str, str]  # tenant -> token

    @property
    def api_url(self) -> str:
        return self.root_url + "/api/external/v2"

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        response = httpx.request(method, self.root_url + "/_sandbox" + path, json=json, timeout=60)
        response.raise_for_status()
        return response.json() if response.content else None

    def records(self, tenant: str, resource: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.admin(
            "GET", f"/{self.tokens[tenant]}/records/{resource}"
        )["items"]
        return items

    def writes(self, tenant: str) -> dict[tuple[str, str], int]:
        items = self.admin("GET", f"/{self.tokens[tenant]}/writes")["items"]
        return {(item["resource"], item["external_reference"]): item["count"] for item in items}

    def requests(self, tenant: str) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", f"/{self.tokens[tenant]}/requests")
        return result

    def set_faults(self, faults: FaultSettings, seed: int = 7) -> None:
        self.admin("PUT", "/faults", {**faults.as_dict(), "seed": seed})

    def create_product(self, tenant: str, label: str, reference: str) -> int:
        response = httpx.post(
            self.api_url + "/products",
            headers={"Authorization": f"Bearer {self.tokens[tenant]}"},
            json={
                "label": label,
                "reference": reference,
                "price_before_tax": "10",
                "vat_rate": "FR_200",
            },
            timeout=30,
        )
        response.raise_for_status()
        return int(response.json()["id"])


@contextmanager
def serve(config: SandboxConfig) -> Iterator[tuple[SandboxApp, str]]:
    app = create_app(config)
    with serve_in_thread(app) as root_url:
        yield app, root_url


@pytest.fixture
def sandbox_for() -> Iterator[Callable[..., ServedSandbox]]:
    """Start a sandbox with one company per tenant given."""
    managers: list[Any] = []

    def start(tenants: list[str], **config: Any) -> ServedSandbox:
        tokens = {
            tenant: f"outbound-{tenant}-{next(_tokens)}-{time.monotonic_ns()}" for tenant in tenants
        }
        manager = serve(SandboxConfig(tokens=list(tokens.values()), **config))
        app, root_url = manager.__enter__()
        managers.append(manager)
        return ServedSandbox(app, root_url, tokens)

    yield start
    for manager in reversed(managers):
        manager.__exit__(None, None, None)


@dataclass
class SwitchableTokens:
    """A TokenSource whose tenants can be disconnected and reconnected by the test."""

    tokens: dict[str, str]
    disconnected: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    async def token_for(self, tenant_id: str) -> SecretStr | None:
        self.asked.append(tenant_id)
        if tenant_id in self.disconnected or tenant_id not in self.tokens:
            return None
        return SecretStr(self.tokens[tenant_id])


class Kit:
    """Helpers the tests reach through the `kit` fixture (test modules cannot import conftest)."""

    SwitchableTokens = SwitchableTokens

    @staticmethod
    def request_key(event: Envelope[Payload]) -> bytes:
        payload = event.payload
        if isinstance(payload, ProductChangeRequested):
            return partition_key(event.tenant_id, "product", payload.product_id)
        if isinstance(payload, CustomerWriteRequested):
            return partition_key(event.tenant_id, "customer", payload.customer_id)
        assert isinstance(payload, ReceiptSendRequested)
        return partition_key(event.tenant_id, "receipt", payload.receipt_id)

    @staticmethod
    async def publish(bootstrap: str, prefix: str, events: list[Envelope[Payload]]) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, **kafka_options(), acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            for event in events:
                await producer.send(
                    OUTBOUND_REQUESTS.name(prefix),
                    value=event.to_json(),
                    key=Kit.request_key(event),
                )
            await producer.flush()
        finally:
            await producer.stop()

    @staticmethod
    def event(tenant: str, payload: Payload) -> Envelope[Payload]:
        return new_event(payload, tenant)

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    @staticmethod
    async def wait_until(
        probe: Callable[[], Any], *, timeout_s: float = 120, interval_s: float = 0.25
    ) -> Any:
        """Poll `probe` (sync or async) until it returns a truthy value; fail after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = probe()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"gave up waiting after {timeout_s}s (last value: {value!r})")
            await asyncio.sleep(interval_s)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
