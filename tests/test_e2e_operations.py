"""What an operator sees of the whole system, every process real: oversized input refused or
dead-lettered without stalling anything, readiness and metrics, and JSON logs from start to
stop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from stockpit_contracts import partition_key
from stockpit_contracts.topics import CONNECTION_COMMANDS
from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    auth_headers,
    connect,
    http,
    stock_matches,
    wait_until,
)
from stockpit_ops.system import SERVICES, SystemConfig, running_system
from stockpit_testing.fixtures import read_topic

pytestmark = pytest.mark.e2e

TENANT = "operated"
TOKEN = "operated-company-token"


async def _publish(bootstrap: str, topic: str, key: bytes, value: bytes) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2_000_000)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value, key=key)
        return int(sent.offset)
    finally:
        await producer.stop()


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_oversized_input_never_stalls_the_system_and_every_log_line_is_json(
    kafka_bootstrap_servers: str, database_url: str, tmp_path: Path
) -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path,
        tokens=(TOKEN,),
    )
    with running_system(config) as system:
        sandbox = SandboxAdmin(system.sandbox_url)
        inventory = Inventory(system, TENANT)
        sandbox.seed_invoices(TOKEN, count=5, seed=3, products=3, max_lines=2)
        connect(system, TENANT, TOKEN)
        wait_until("first import", lambda: stock_matches(inventory, sandbox.expected_stock(TOKEN)))

        # 20 e-mails of 70 KB: refused at the edge, the body over the cap; one e-mail over
        # Pennylane's bound: refused naming the field.
        url = f"{inventory.url}/customers"
        response = httpx.post(
            url,
            json={"name": "Client", "emails": ["x" * 70_000] * 20},
            headers=auth_headers(url),
            timeout=30,
        )
        assert response.status_code == 413, response.text
        response = httpx.post(
            url,
            json={"name": "Client", "emails": ["x" * 300 + "@example.fr"]},
            headers=auth_headers(url),
            timeout=30,
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][:2] == ["body", "emails"]

        # A 950 KB command whose dead letter, JSON-escaped whole, would be 1.9 MB.
        commands = CONNECTION_COMMANDS.name(config.topic_prefix)
        body = json.dumps(
            {
                "event_type": "connection.connect",
                "schema_version": 1,
                "tenant_id": TENANT,
                "payload": {"pennylane_token": TOKEN, "settings": {"x": '"\\' * 237_000}},
            }
        ).encode()
        offset = asyncio.run(
            _publish(kafka_bootstrap_servers, commands, partition_key(TENANT), body)
        )

        def dead_lettered() -> dict[str, object] | None:
            rows = http("GET", system.url("poller") + "/operations/dead-letters")
            return next((r for r in rows if r["topic"] == commands and r["offset"] == offset), None)

        kept = wait_until("the 950 KB command dead-lettered", dead_lettered, 60)
        assert TOKEN not in str(kept["value"]), "the token is masked"
        [record] = asyncio.run(
            read_topic(kafka_bootstrap_servers, f"{commands}.dlq", expect=1, timeout_s=60)
        )
        assert len(record.value) < 20_000
        assert json.loads(record.value)["dead_letter_id"] == kept["id"]

        # The poller's outbox still flows: new invoices reach the stock.
        sandbox.seed_invoices(TOKEN, count=3, seed=5, products=3, max_lines=2)
        wait_until(
            "invoices after the big command imported",
            lambda: stock_matches(inventory, sandbox.expected_stock(TOKEN)),
        )

        for service in SERVICES:
            ready = httpx.get(system.url(service) + "/health/ready", timeout=30)
            assert ready.status_code == 200, (service, ready.text)
            assert set(ready.json()["checks"]) >= {"outbox", "consumers"}
            relay_ready = httpx.get(system.relay_url(service) + "/health/ready", timeout=30)
            assert relay_ready.status_code == 200, (service, relay_ready.text)
            assert set(relay_ready.json()["checks"]) >= {"outbox", "relay", "broker"}
        poller = httpx.get(system.url("poller") + "/metrics", timeout=30).text
        assert "tenant=" not in poller
        assert (_metric(poller, "stockpit_pennylane_requests_total", service="poller") or 0) > 0
        assert _metric(poller, "stockpit_poller_sync_lag_max_seconds") is not None
        assert _metric(poller, "stockpit_dead_letters_total", topic=commands) == 1, (
            "the big command counted once"
        )
        outbound = httpx.get(system.url("outbound") + "/metrics", timeout=30).text
        assert _metric(outbound, "stockpit_outbound_pending_writes") is not None
        inventory_metrics = httpx.get(system.url("inventory") + "/metrics", timeout=30).text
        relay_metrics = httpx.get(system.relay_url("inventory") + "/metrics", timeout=30).text
        schema = config.schema("inventory")
        published = _metric(relay_metrics, "stockpit_outbox_published_total", schema=schema)
        assert (published or 0) > 0, "the relay reports what it published"
        assert _metric(relay_metrics, "stockpit_outbox_pending", schema=schema) is not None
        assert _metric(inventory_metrics, "stockpit_consumer_lag") is not None
        assert (
            _metric(
                inventory_metrics,
                "stockpit_http_requests_total",
                route="/tenants/{tenant_id}/customers",
                status="422",
            )
            == 1
        )

    for service in (*SERVICES, *(f"{service}-relay" for service in SERVICES)):
        lines = (tmp_path / f"{service}.log").read_text().splitlines()
        assert len(lines) > 5, service
        for line in lines:
            try:
                parsed = json.loads(line)
            except ValueError:
                pytest.fail(f"{service} wrote a line that is not JSON: {line[:300]!r}")
            assert isinstance(parsed, dict), line[:300]
        assert any("uvicorn" in json.loads(line).get("logger", "") for line in lines), service
        if not service.endswith("-relay"):  # a relay migrates nothing
            assert any("alembic" in json.loads(line).get("logger", "") for line in lines), service
