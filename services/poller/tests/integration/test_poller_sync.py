"""The poller against the Pennylane sandbox (served over HTTP), real Kafka and real PostgreSQL.

No timed assertions: tests wait (bounded) for a condition, and fail only if it never holds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from pennylane_sandbox import (
    FaultSettings,
    SandboxApp,
    SandboxConfig,
)
from pennylane_sandbox import (
    create_app as sandbox_app,
)
from pennylane_sandbox.serving import serve_in_loop
from poller.adapters.clients import TenantClients
from poller.entrypoints.app import PollerSettings, create_app
from poller.service_layer import scheduler as scheduler_module
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from stockpit_connections import Connection, ConnectionRegistry, TokenCipher
from stockpit_contracts import Envelope, Payload, new_event, parse_event, partition_key
from stockpit_contracts.payloads.catalog import ProductUpserted
from stockpit_contracts.payloads.connections import ConnectionRepointed, ConnectTenant
from stockpit_contracts.payloads.documents import DocumentDeleted, DocumentKind, DocumentVersionRead
from stockpit_contracts.payloads.inventory import TenantSettingsChanged
from stockpit_contracts.payloads.poller import SyncRunFinished
from stockpit_contracts.topics import (
    CONNECTION_COMMANDS,
    CONNECTION_EVENTS,
    INVENTORY_SETTINGS,
    PENNYLANE_CATALOG,
    PENNYLANE_DOCUMENTS,
    POLLER_SYNC_RUNS,
)
from stockpit_pennylane.client import PennylaneClient
from stockpit_pennylane.client.bodies import ProductUpdate
from stockpit_runtime.kafka_security import kafka_options
from stockpit_testing.fixtures import (
    authorized_client,
    drop_schemas,
    publish_raw,
    read_topic,
    running_service,
)

pytestmark = pytest.mark.integration

TOKEN = "tenant-a-token-123"
TOKEN_B = "tenant-b-token-456"
KEY = TokenCipher.generate_key()
API = "/api/external/v2"


@dataclass
class Sandbox:
    app: SandboxApp
    url: str

    async def admin(self, method: str, path: str, json: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.request(method, path, json=json)
            response.raise_for_status()
            return response.json() if response.content else None

    async def seed(self, token: str, **body: Any) -> Any:
        return await self.admin("POST", f"/_sandbox/{token}/seed/customer_invoices", body)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    app = sandbox_app(SandboxConfig(tokens=[TOKEN, TOKEN_B]))
    # The sandbox sends its own `Date`, on its clock (which a test may move forward).
    async with serve_in_loop(app) as url:
        yield Sandbox(app, url)


@pytest.fixture
async def connections_schema(database_url: str, db_schema: str) -> AsyncIterator[str]:
    name = f"{db_schema}_c"
    yield name
    await drop_schemas(database_url, name)


def _settings(
    kafka: str,
    database_url: str,
    prefix: str,
    schema: str,
    connections: str,
    sandbox_url: str,
    **extra: Any,
) -> PollerSettings:
    return PollerSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        DATABASE_URL=database_url,
        topic_prefix=prefix,
        db_schema=schema,
        connections_schema=connections,
        token_key=KEY,
        pennylane_base_url=sandbox_url + API,
        lease_ttl_s=3,
        scheduler_tick_s=0.2,
        **extra,
    )


@pytest.fixture
def settings(
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    connections_schema: str,
    sandbox: Sandbox,
) -> PollerSettings:
    return _settings(
        kafka_bootstrap_servers,
        database_url,
        topic_prefix,
        db_schema,
        connections_schema,
        sandbox.url,
        page_size=20,
    )


@pytest.fixture
async def poller(settings: PollerSettings) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings)
    async with running_service(app), authorized_client(app, "http://poller") as client:
        yield client


class TopicReader:
    """Keeps reading a topic from the start; `until` waits for a condition on all events so far."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            **kafka_options(),
            auto_offset_reset="earliest",
            group_id=None,
        )
        self.events: list[Envelope[Payload]] = []
        self.keys: list[bytes] = []

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def until(
        self, condition: Callable[[list[Envelope[Payload]]], bool], timeout_s: float = 90
    ) -> list[Envelope[Payload]]:
        try:
            async with asyncio.timeout(timeout_s):
                while not condition(self.events):
                    batch = await self._consumer.getmany(timeout_ms=300)
                    for records in batch.values():
                        for record in records:
                            self.events.append(parse_event(record.value))
                            self.keys.append(record.key)
        except TimeoutError:
            pass
        return self.events


def documents(events: list[Envelope[Payload]]) -> dict[int, list[DocumentVersionRead]]:
    found: dict[int, list[DocumentVersionRead]] = {}
    for event in events:
        if isinstance(event.payload, DocumentVersionRead):
            found.setdefault(event.payload.pennylane_id, []).append(event.payload)
    return found


async def _set_interval(settings: PollerSettings, tenant: str, interval_s: int) -> None:
    """The sync interval as Stockpit (inventory) sends it: its settings are its one home."""
    await publish_raw(
        settings.kafka_bootstrap_servers,
        INVENTORY_SETTINGS.name(settings.topic_prefix),
        partition_key(tenant),
        new_event(TenantSettingsChanged(sync_interval_s=interval_s), tenant).to_json(),
    )


# The sandbox dates its seeded invoices in the past: these tests read all of them.
ALL_HISTORY = "2000-01-01"


async def _connect(client: httpx.AsyncClient, tenant: str, token: str, **settings: Any) -> None:
    settings.setdefault("documents_since", ALL_HISTORY)
    response = await client.put(
        f"/connections/{tenant}", json={"pennylane_token": token, "settings": settings}
    )
    assert response.status_code == 200, response.text


async def _wait(predicate: Callable[[], Awaitable[object]], timeout_s: float = 60) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            while not await predicate():
                await asyncio.sleep(0.2)
    except TimeoutError:
        return False
    return True


async def _last_success(client: httpx.AsyncClient, tenant: str) -> str | None:
    value: str | None = (await client.get(f"/connections/{tenant}")).json()[
        "last_successful_sync_at"
    ]
    return value


async def _sync_once_more(client: httpx.AsyncClient, tenant: str, what: str = "everything") -> None:
    """Ask for an import now and wait until a sync that started after the ask succeeded."""
    before = await _last_success(client, tenant)
    response = await client.post(f"/connections/{tenant}/import-now", json={"what": what})
    assert response.status_code == 202, response.text

    async def synced() -> bool:
        status = (await client.get(f"/connections/{tenant}")).json()
        return bool(
            status["last_successful_sync_at"] != before
            and status["import_requested_at"] is None
            and not status["syncing"]
        )

    assert await _wait(synced), "the requested sync never finished"


async def test_first_sync_then_import_now_and_schedule_and_credit_notes(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    seeded = await sandbox.seed(TOKEN, count=60, credit_note_share=0.3, draft_share=0.1, seed=3)
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=5)  # not acted on
        await _connect(poller, "tenant-b", TOKEN_B)
        await _set_interval(settings, "tenant-a", 3600)
        await _set_interval(settings, "tenant-b", 5)
        ids = set(range(seeded["first_id"], seeded["last_id"] + 1))
        await reader.until(lambda events: ids <= documents(events).keys())
        read = documents(reader.events)
        assert ids <= read.keys()
        kinds = {i: read[i][-1].kind for i in ids}
        for i in ids:
            quantities = [line.quantity for line in read[i][-1].lines]
            expected = DocumentKind.CREDIT_NOTE if quantities[0] < 0 else DocumentKind.INVOICE
            assert kinds[i] is expected, (i, quantities)
        assert DocumentKind.CREDIT_NOTE in kinds.values()
        assert DocumentKind.INVOICE in kinds.values()
        assert any(read[i][-1].draft for i in ids)
        line = read[seeded["first_id"]][-1].lines[0]
        assert line.product is not None
        assert line.product.ledger_account_number in ("706000", "707000")
        customer = read[seeded["first_id"]][-1].customer
        assert customer is not None
        assert customer.name.startswith("Client")
        assert set(reader.keys) == {b"tenant-a", b"tenant-b"} or set(reader.keys) == {b"tenant-a"}

        # Manual trigger: tenant-a waits an hour between syncs (Stockpit's setting, not the
        # connection's), import-now reads at once.
        more = await sandbox.seed(TOKEN, count=5, customers=0, products=0, seed=4)
        response = await poller.post("/connections/tenant-a/import-now", json={"what": "invoices"})
        assert response.status_code == 202
        new_ids = set(range(more["first_id"], more["last_id"] + 1))
        await reader.until(lambda events: new_ids <= documents(events).keys())
        assert new_ids <= documents(reader.events).keys()

        # Schedule: tenant-b syncs every 5 s (set in Stockpit) without being asked.
        later = await sandbox.seed(TOKEN_B, count=3, seed=5)
        later_ids = set(range(later["first_id"], later["last_id"] + 1))
        await reader.until(lambda events: later_ids <= documents(events).keys())
        assert later_ids <= documents(reader.events).keys()
        b_events = [e for e in reader.events if e.tenant_id == "tenant-b"]
        assert {
            e.payload.pennylane_id for e in b_events if isinstance(e.payload, DocumentVersionRead)
        } >= later_ids

    catalog = PENNYLANE_CATALOG.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, catalog) as reader:
        await reader.until(lambda events: len(events) >= 60)
        types = {e.event_type for e in reader.events}
        assert {"pennylane.product.upserted", "pennylane.customer.upserted"} <= types

    status = (await poller.get("/connections/tenant-a")).json()
    assert status["status"] == "connected"
    assert status["last_successful_sync_at"] is not None
    assert TOKEN not in str(status)
    metrics = (await poller.get("/metrics")).text
    assert 'stockpit_poller_events_published_total{stream="customer_invoices"}' in metrics
    assert 'stockpit_pennylane_requests_total{endpoint="GET customer_invoices"' in metrics
    assert "tenant=" not in metrics, "no series grows with tenants"
    assert re.search(r"^stockpit_poller_sync_lag_max_seconds \d", metrics, re.MULTILINE)
    assert re.search(r"^stockpit_poller_tenants 2\.0", metrics, re.MULTILINE)
    assert (await poller.get("/health/ready")).status_code == 200


async def test_disconnect_stops_and_reconnect_resumes(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    first = await sandbox.seed(TOKEN, count=10, seed=1)
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=5)
        first_ids = set(range(first["first_id"], first["last_id"] + 1))
        await reader.until(lambda events: first_ids <= documents(events).keys())
        assert first_ids <= documents(reader.events).keys()

        response = await poller.post("/connections/tenant-a/disconnect")
        assert response.json()["status"] == "disconnected"
        assert (await poller.post("/connections/tenant-a/import-now")).status_code == 404
        while_away = await sandbox.seed(TOKEN, count=10, customers=0, products=0, seed=2)
        away_ids = set(range(while_away["first_id"], while_away["last_id"] + 1))

        response = await poller.post("/connections/tenant-a/reconnect")
        assert response.json()["status"] == "connected"
        await reader.until(lambda events: away_ids <= documents(events).keys())
        read = documents(reader.events)
        assert away_ids <= read.keys()
        assert all(len(read[i]) == 1 for i in first_ids), "resumed from the watermark: no re-scan"
    assert (await poller.post("/connections/nobody/reconnect")).status_code == 404


async def test_reconnect_after_the_changelog_window_rescans(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    first = await sandbox.seed(TOKEN, count=5, seed=1)
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=3600)
        first_ids = set(range(first["first_id"], first["last_id"] + 1))
        await reader.until(lambda events: first_ids <= documents(events).keys())
        await poller.post("/connections/tenant-a/disconnect")
        await sandbox.admin("POST", "/_sandbox/clock/advance", {"seconds": 5 * 7 * 86400})
        later = await sandbox.seed(TOKEN, count=5, customers=0, products=0, seed=2)
        later_ids = set(range(later["first_id"], later["last_id"] + 1))
        await poller.post("/connections/tenant-a/reconnect")
        await reader.until(lambda events: later_ids <= documents(events).keys())
        read = documents(reader.events)
        assert later_ids <= read.keys()
        # The full re-scan read the old ones again: at least once, never skipped.
        assert all(len(read[i]) >= 1 for i in first_ids)


async def _relabel(sandbox: Sandbox, invoice_id: int, label: str) -> dt.datetime:
    """Change a finalized invoice through the API (a label may still change) and return its new
    `updated_at`."""
    async with httpx.AsyncClient(base_url=sandbox.url + API) as client:
        response = await client.put(
            f"/customer_invoices/{invoice_id}",
            json={"label": label},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    response.raise_for_status()
    return dt.datetime.fromisoformat(response.json()["updated_at"])


def _versions_at(events: list[Envelope[Payload]], invoice_id: int, updated_at: dt.datetime) -> int:
    return sum(1 for v in documents(events).get(invoice_id, []) if v.updated_at == updated_at)


async def test_a_first_sync_starts_its_changelog_at_pennylanes_time_and_loses_no_change(
    sandbox: Sandbox, settings: PollerSettings
) -> None:
    """The first sync learns where its changelog resumes from one request (Pennylane's `Date`
    less a margin) instead of reading the whole retained changelog; a change made just before
    the scan is published once, one made while the scan runs (to an invoice it already read)
    still arrives."""
    seeded = await sandbox.seed(TOKEN, count=200, customers=5, products=10, max_lines=3, seed=61)
    first, last = seeded["first_id"], seeded["last_id"]
    ids = set(range(first, last + 1))
    # The history is older than the margin, as a real one is; the changelog still holds it.
    await sandbox.admin("POST", "/_sandbox/clock/advance", {"seconds": 3600})
    await sandbox.admin("DELETE", f"/_sandbox/{TOKEN}/requests")
    before_scan = await _relabel(sandbox, last, "changed just before the first sync")
    app = create_app(settings.model_copy(update={"changelog_page_size": 50}))
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with (
        running_service(app),
        authorized_client(app, "http://p") as poller,
        TopicReader(settings.kafka_bootstrap_servers, topic) as reader,
    ):
        # A small share spreads the scan's 10 pages over several windows.
        await _connect(
            poller,
            "tenant-a",
            TOKEN,
            poller_rate_share="0.2",
            poller_first_sync_rate_share="0.2",
        )
        await _set_interval(settings, "tenant-a", 3600)
        await reader.until(lambda events: first in documents(events))
        changed_at = time.time()
        during_scan = await _relabel(sandbox, first, "changed while the scan runs")
        await reader.until(lambda events: _versions_at(events, first, during_scan) > 0)
        assert await _wait(lambda: _has_succeeded(poller, "tenant-a"))
        await reader.until(lambda events: ids <= documents(events).keys(), timeout_s=5)
        log = (await sandbox.admin("GET", f"/_sandbox/{TOKEN}/requests"))["requests"]
    pages_after_change = [
        e for e in log if e["path"].endswith(f"{API}/customer_invoices") and e["at"] > changed_at
    ]
    assert pages_after_change, "the change was made while the scan was still reading"
    assert ids <= documents(reader.events).keys()
    assert _versions_at(reader.events, first, during_scan) == 1
    assert _versions_at(reader.events, last, before_scan) == 1, "read by the scan, not again"
    # 200 invoice events (4 pages of 50) were not read: one request to learn Pennylane's time,
    # one to follow from it after the scan.
    changelog = [e for e in log if e["path"].endswith("/changelogs/customer_invoices")]
    assert len(changelog) == 2, [e["path"] for e in log]


class FailingFollow(httpx.AsyncHTTPTransport):
    """The real transport, answering 500 to every read of the invoice changelog from a date
    while armed: a run fails between its first scan and the follow after it."""

    armed = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        follow = request.url.path.endswith("/changelogs/customer_invoices") and (
            "start_date" in request.url.params
        )
        if self.armed and follow:
            return httpx.Response(500, json={"error": "injected", "status": 500})
        return await super().handle_async_request(request)


async def test_a_follow_resumed_after_a_failed_first_sync_still_leaves_out_old_invoices(
    sandbox: Sandbox, settings: PollerSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 17: an invoice dated before `documents_since` changed just before the first sync is
    left out by the scan, and by the follow that re-reads the margin before it, also when that
    follow runs in a later run because the first one failed right after its scan."""
    clock = dt.datetime.fromisoformat((await sandbox.admin("GET", "/_sandbox/clock"))["now"])
    today = clock.date()
    old = await sandbox.seed(
        TOKEN, count=5, customers=2, products=3, seed=71, start_date=str(today - dt.timedelta(60))
    )
    new = await sandbox.seed(
        TOKEN, count=5, customers=2, products=3, seed=72, start_date=str(today)
    )
    new_ids = set(range(new["first_id"], new["last_id"] + 1))
    await sandbox.admin("POST", "/_sandbox/clock/advance", {"seconds": 3600})
    await _relabel(sandbox, old["first_id"], "changed just before the first sync")
    transport = FailingFollow()
    monkeypatch.setattr(
        scheduler_module,
        "TenantClients",
        lambda base_url: TenantClients(base_url, transport=transport),
    )
    app = create_app(settings)
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with (
        running_service(app),
        authorized_client(app, "http://p") as poller,
        TopicReader(settings.kafka_bootstrap_servers, topic) as reader,
    ):
        since = str(today - dt.timedelta(days=1))
        await _connect(poller, "tenant-a", TOKEN, documents_since=since)
        await _set_interval(settings, "tenant-a", 3600)

        async def failed() -> bool:
            return bool((await poller.get("/connections/tenant-a")).json()["last_error"])

        assert await _wait(failed), "the first sync fails at its follow"
        await reader.until(lambda events: new_ids <= documents(events).keys())
        transport.armed = False
        marker = await _relabel(sandbox, new["first_id"], "changed after the failed sync")
        await _sync_once_more(poller, "tenant-a", "invoices")
        await reader.until(lambda events: _versions_at(events, new["first_id"], marker) > 0)
    read = documents(reader.events)
    assert _versions_at(reader.events, new["first_id"], marker) == 1
    assert new_ids <= read.keys()
    old_ids = set(range(old["first_id"], old["last_id"] + 1))
    assert not old_ids & read.keys(), "dated before documents_since: never published"


async def test_purchase_orders_new_changed_and_deleted(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    await sandbox.seed(TOKEN, count=1, customers=2, products=3, seed=1)
    state = await sandbox.admin("GET", f"/_sandbox/{TOKEN}/records/customers")
    customer_id = state["items"][0]["id"] if isinstance(state, dict) else state[0]["id"]
    products = await sandbox.admin("GET", f"/_sandbox/{TOKEN}/records/products")
    product_id = products["items"][0]["id"] if isinstance(products, dict) else products[0]["id"]

    async def create(quantity: int) -> int:
        body = {
            "customer_id": customer_id,
            "invoice_lines": [{"product_id": product_id, "quantity": quantity}],
        }
        created = await sandbox.admin("POST", f"/_sandbox/{TOKEN}/commercial_documents", body)
        return int(created["id"])

    kept, changed, deleted = await create(2), await create(3), await create(4)
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=3600)
        await reader.until(lambda events: {kept, changed, deleted} <= documents(events).keys())
        read = documents(reader.events)
        assert read[kept][-1].kind is DocumentKind.PURCHASE_ORDER
        assert read[kept][-1].lines[0].quantity == 2

        body = {"invoice_lines": [{"product_id": product_id, "quantity": 7}]}
        await sandbox.admin("PUT", f"/_sandbox/{TOKEN}/commercial_documents/{changed}", body)
        await sandbox.admin("DELETE", f"/_sandbox/{TOKEN}/commercial_documents/{deleted}")
        new = await create(5)
        await poller.post("/connections/tenant-a/import-now", json={"what": "purchase_orders"})

        def settled(events: list[Envelope[Payload]]) -> bool:
            docs = documents(events)
            gone = any(
                isinstance(e.payload, DocumentDeleted) and e.payload.pennylane_id == deleted
                for e in events
            )
            return new in docs and len(docs.get(changed, [])) >= 2 and gone

        await reader.until(settled)
        read = documents(reader.events)
        assert read[new][-1].lines[0].quantity == 5
        assert read[changed][-1].lines[0].quantity == 7
        assert read[changed][-1].updated_at > read[changed][0].updated_at
        assert len(read[kept]) == 1, "an unchanged purchase order is not published again"
        assert any(
            isinstance(e.payload, DocumentDeleted)
            and e.payload.pennylane_id == deleted
            and e.payload.kind is DocumentKind.PURCHASE_ORDER
            for e in reader.events
        )


async def test_old_purchase_orders_beyond_the_window_are_read_again(
    sandbox: Sandbox, settings: PollerSettings
) -> None:
    """Rule 14: purchase orders older than the newest re-listed ones (a window of 2 here) are
    re-read by id over the syncs: an edit and a deletion of old ones are published."""
    await sandbox.seed(TOKEN, count=1, customers=1, products=1, seed=1)
    customer_id = (await sandbox.admin("GET", f"/_sandbox/{TOKEN}/records/customers"))["items"][0][
        "id"
    ]
    product_id = (await sandbox.admin("GET", f"/_sandbox/{TOKEN}/records/products"))["items"][0][
        "id"
    ]

    async def create(quantity: int) -> int:
        body = {
            "customer_id": customer_id,
            "invoice_lines": [{"product_id": product_id, "quantity": quantity}],
        }
        created = await sandbox.admin("POST", f"/_sandbox/{TOKEN}/commercial_documents", body)
        return int(created["id"])

    oldest, old, *newer = [await create(n) for n in range(1, 7)]
    app = create_app(settings.model_copy(update={"purchase_order_window": 2}))
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with (
        running_service(app),
        authorized_client(app, "http://p") as poller,
        TopicReader(settings.kafka_bootstrap_servers, topic) as reader,
    ):
        await _connect(poller, "tenant-a", TOKEN)
        every = {oldest, old, *newer}
        await reader.until(lambda events: every <= documents(events).keys())
        assert every <= documents(reader.events).keys()

        body = {"invoice_lines": [{"product_id": product_id, "quantity": 40}]}
        await sandbox.admin("PUT", f"/_sandbox/{TOKEN}/commercial_documents/{oldest}", body)
        await sandbox.admin("DELETE", f"/_sandbox/{TOKEN}/commercial_documents/{old}")
        await _sync_once_more(poller, "tenant-a", "purchase_orders")

        def deleted(events: list[Envelope[Payload]]) -> bool:
            return any(
                isinstance(e.payload, DocumentDeleted) and e.payload.pennylane_id == old
                for e in events
            )

        await reader.until(
            lambda events: len(documents(events).get(oldest, [])) >= 2 and deleted(events)
        )
        read = documents(reader.events)
        assert read[oldest][-1].lines[0].quantity == 40
        assert deleted(reader.events)
        assert all(len(read[i]) == 1 for i in newer), "unchanged ones are not published again"

        # More new ones than the window holds: read by id watermark, none left out.
        more = [await create(n) for n in (7, 8, 9)]
        await _sync_once_more(poller, "tenant-a", "purchase_orders")
        # Fewer: the window's listing brings them.
        last = await create(10)
        await _sync_once_more(poller, "tenant-a", "purchase_orders")
        await reader.until(lambda events: {*more, last} <= documents(events).keys())
        read = documents(reader.events)
        assert {*more, last} <= read.keys()
        assert all(len(read[i]) == 1 for i in (*newer, *more, last)), "each published once"


async def test_the_schedule_follows_the_interval_set_in_stockpit(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    """Rule 16: the interval comes from inventory's settings events, not from the connection."""
    await sandbox.seed(TOKEN, count=3, seed=2)
    await _connect(poller, "tenant-a", TOKEN, sync_interval_s=5)  # the connection's: ignored
    assert await _wait(lambda: _has_succeeded(poller, "tenant-a"))
    status = (await poller.get("/connections/tenant-a")).json()
    assert status["sync_interval_s"] == 30 * 60
    assert "sync_interval_s" not in status["settings"]
    first = status["last_successful_sync_at"]

    await _set_interval(settings, "tenant-a", 5)
    seen: set[str] = {first}

    async def synced_twice_more_unasked() -> bool:
        seen.add((await poller.get("/connections/tenant-a")).json()["last_successful_sync_at"])
        return len(seen) >= 3

    assert await _wait(synced_twice_more_unasked, timeout_s=90), "never synced every 5 s"
    assert (await poller.get("/connections/tenant-a")).json()["sync_interval_s"] == 5

    await _set_interval(settings, "tenant-a", 86_400)

    async def postponed() -> bool:
        status = (await poller.get("/connections/tenant-a")).json()
        if status["sync_interval_s"] != 86_400 or status["syncing"]:
            return False
        due = dt.datetime.fromisoformat(status["next_sync_at"])
        return due > dt.datetime.now(dt.UTC) + dt.timedelta(hours=12)

    assert await _wait(postponed), "the next sync did not move a day after the last one"


async def test_rate_limited_answers_are_waited_out(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    seeded = await sandbox.seed(TOKEN, count=40, seed=9)
    sandbox.app.faults.per_token[TOKEN] = FaultSettings(rate_429=0.3)
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=3600, poller_rate_share="0.4")
        ids = set(range(seeded["first_id"], seeded["last_id"] + 1))
        await reader.until(lambda events: ids <= documents(events).keys(), timeout_s=180)
        assert ids <= documents(reader.events).keys()
    metrics = (await poller.get("/metrics")).text
    rate_limited = [
        line
        for line in metrics.splitlines()
        if line.startswith("stockpit_pennylane_requests_total{")
        and 'service="poller"' in line
        and 'status="429"' in line
    ]
    assert rate_limited
    assert sum(float(line.split()[-1]) for line in rate_limited) > 0


async def test_an_idle_sync_publishes_nothing(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    """The changelog's start date is inclusive, so its newest events come back on every read:
    the poller skips those it handled, and a sync with no change in Pennylane publishes nothing."""
    seeded = await sandbox.seed(TOKEN, count=10, customers=4, products=6, seed=21)
    counts = (await sandbox.admin("GET", f"/_sandbox/{TOKEN}/state"))["counts"]
    catalog_size = counts["products"] + counts["customers"]
    invoice_ids = set(range(seeded["first_id"], seeded["last_id"] + 1))
    prefix = settings.topic_prefix
    bootstrap = settings.kafka_bootstrap_servers
    async with (
        TopicReader(bootstrap, PENNYLANE_CATALOG.name(prefix)) as catalog,
        TopicReader(bootstrap, PENNYLANE_DOCUMENTS.name(prefix)) as docs,
    ):
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=3600)
        assert await _wait(lambda: _has_succeeded(poller, "tenant-a"))
        for _ in range(3):
            await _sync_once_more(poller, "tenant-a")

        # One real change, then one more sync: its event comes after anything the idle syncs
        # could have published (one key, one partition, the outbox relays in order).
        product_id = (await sandbox.admin("GET", f"/_sandbox/{TOKEN}/records/products"))["items"][
            0
        ]["id"]
        async with PennylaneClient(TOKEN, base_url=sandbox.url + API) as client:
            await client.update_product(product_id, ProductUpdate(label="Renamed after idling"))
        one_more = await sandbox.seed(TOKEN, count=1, customers=0, products=0, seed=22)
        invoice_ids.add(one_more["first_id"])
        await _sync_once_more(poller, "tenant-a")

        def renamed(events: list[Envelope[Payload]]) -> bool:
            return any(
                isinstance(e.payload, ProductUpserted) and e.payload.label == "Renamed after idling"
                for e in events
            )

        await catalog.until(renamed)
        await docs.until(lambda events: invoice_ids <= documents(events).keys())
        assert renamed(catalog.events)
        assert len(catalog.events) == catalog_size + 1, (
            f"{len(catalog.events) - catalog_size - 1} catalog events published by idle syncs"
        )
        assert len(docs.events) == len(invoice_ids), "idle syncs published documents again"


async def _has_succeeded(client: httpx.AsyncClient, tenant: str) -> bool:
    return await _last_success(client, tenant) is not None


async def test_import_now_reads_only_the_streams_it_names(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    await sandbox.seed(TOKEN, count=3, customers=2, products=3, seed=31)
    customer_id = (await sandbox.admin("GET", f"/_sandbox/{TOKEN}/records/customers"))["items"][0][
        "id"
    ]
    product_id = (await sandbox.admin("GET", f"/_sandbox/{TOKEN}/records/products"))["items"][0][
        "id"
    ]
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=3600)
        assert await _wait(lambda: _has_succeeded(poller, "tenant-a"))

        body = {
            "customer_id": customer_id,
            "invoice_lines": [{"product_id": product_id, "quantity": 4}],
        }
        order = (await sandbox.admin("POST", f"/_sandbox/{TOKEN}/commercial_documents", body))["id"]
        more = await sandbox.seed(TOKEN, count=2, customers=0, products=0, seed=32)
        invoice_ids = set(range(more["first_id"], more["last_id"] + 1))

        async def paths_read_by(what: str) -> list[str]:
            await sandbox.admin("DELETE", f"/_sandbox/{TOKEN}/requests")
            await _sync_once_more(poller, "tenant-a", what)
            log = await sandbox.admin("GET", f"/_sandbox/{TOKEN}/requests")
            return [entry["path"] for entry in log["requests"]]

        scheduled = (await poller.get("/connections/tenant-a")).json()["next_sync_at"]
        invoices_only = await paths_read_by("invoices")
        assert any("changelogs/customer_invoices" in path for path in invoices_only)
        assert not [
            path
            for path in invoices_only
            if "commercial_documents" in path
            or "changelogs/products" in path
            or "changelogs/customers" in path
        ], invoices_only
        await reader.until(lambda events: invoice_ids <= documents(events).keys())
        assert invoice_ids <= documents(reader.events).keys()
        assert order not in documents(reader.events), "purchase orders wait for their schedule"

        orders_only = await paths_read_by("purchase_orders")
        assert any("commercial_documents" in path for path in orders_only)
        assert not [path for path in orders_only if "changelogs/" in path], orders_only
        await reader.until(lambda events: order in documents(events))
        assert documents(reader.events)[order][-1].kind is DocumentKind.PURCHASE_ORDER

        status = (await poller.get("/connections/tenant-a")).json()
        assert status["next_sync_at"] == scheduled, "the other streams keep their schedule"

        everything = await paths_read_by("everything")
        for resource in ("products", "customers", "customer_invoices"):
            assert any(f"changelogs/{resource}" in path for path in everything), resource
        assert any("commercial_documents" in path for path in everything)


async def test_disconnect_mid_sync_stops_reading_at_once_and_reconnect_loses_nothing(
    sandbox: Sandbox, settings: PollerSettings
) -> None:
    """A first sync of a large history, slowed by a small rate share, is disconnected halfway:
    no request for the token reaches Pennylane after the disconnect answered; a reconnect
    resumes from the watermarks and every invoice is published exactly once."""
    seeded = await sandbox.seed(TOKEN, count=2000, customers=20, products=30, max_lines=5, seed=41)
    wanted = set(range(seeded["first_id"], seeded["last_id"] + 1))
    app = create_app(settings.model_copy(update={"page_size": 100}))
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with (
        running_service(app),
        authorized_client(app, "http://p") as poller,
        TopicReader(settings.kafka_bootstrap_servers, topic) as reader,
    ):
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=5, poller_rate_share="0.2")
        await reader.until(lambda events: len(documents(events)) >= 300)
        assert len(documents(reader.events)) >= 300
        assert (await poller.get("/connections/tenant-a")).json()["syncing"]

        response = await poller.post("/connections/tenant-a/disconnect")
        answered_at = time.time()
        assert response.json()["status"] == "disconnected"
        assert not response.json()["syncing"], "the sync ended before the answer"
        partial = set(documents(reader.events))
        assert partial < wanted, "disconnected mid-sync"
        # Room for a sync that failed to stop to show itself (more than one 5 s interval and
        # many scheduler ticks); the assertion below does not depend on how long this takes.
        while_away = await sandbox.seed(TOKEN, count=50, customers=0, products=0, seed=42)
        wanted |= set(range(while_away["first_id"], while_away["last_id"] + 1))
        await asyncio.sleep(6)
        log = await sandbox.admin("GET", f"/_sandbox/{TOKEN}/requests")
        late = [entry for entry in log["requests"] if entry["at"] > answered_at]
        assert not late, f"{len(late)} requests after the disconnect: {late[:3]}"

        response = await poller.post("/connections/tenant-a/reconnect")
        assert response.json()["status"] == "connected"
        await reader.until(lambda events: wanted <= documents(events).keys(), timeout_s=240)
        read = documents(reader.events)
        assert set(read) == wanted, f"{len(wanted - set(read))} never published"
        twice = [i for i, versions in read.items() if len(versions) != 1]
        assert not twice, f"{len(twice)} published more than once"
        records = (await sandbox.admin("GET", f"/_sandbox/{TOKEN}/records/customer_invoices"))[
            "items"
        ]
        for record in records:
            assert len(read[record["id"]][0].lines) == len(record["invoice_lines_items"])


async def test_the_poller_never_uses_more_than_its_share_of_the_token(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    """poller_rate_share 0.4 of 25 requests / 5 s: at most 10 in any 5 s, as Pennylane counts
    them (the sandbox's log of arrivals), through a long first sync and then import-nows that
    start syncs back to back."""
    seeded = await sandbox.seed(TOKEN, count=300, customers=30, products=40, max_lines=5, seed=51)
    ids = set(range(seeded["first_id"], seeded["last_id"] + 1))
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=3600, poller_rate_share="0.4")
        assert await _wait(lambda: _has_succeeded(poller, "tenant-a"), timeout_s=240)
        for _ in range(6):
            await _sync_once_more(poller, "tenant-a")
        await reader.until(lambda events: ids <= documents(events).keys())
        assert ids <= documents(reader.events).keys()
    log = await sandbox.admin("GET", f"/_sandbox/{TOKEN}/requests")
    share = 10
    assert len(log["requests"]) > 3 * share, "long enough to span several windows"
    assert log["max_received_in_any_window"] <= share, log["max_received_in_any_window"]
    assert not [entry for entry in log["requests"] if entry["status"] == 429]


async def _registry_row(settings: PollerSettings, tenant: str) -> Connection | None:
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        registry = ConnectionRegistry(engine, KEY, schema=settings.connections_schema)
        return await registry.get(tenant)
    finally:
        await engine.dispose()


async def test_a_first_sync_paces_at_the_first_sync_share_and_the_next_ones_at_the_normal_share(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    """poller_rate_share 0.12 (3 of 25 requests / 5 s), 0.6 (15) while the first sync runs:
    the first sync goes above 3 in a window (after the hand-over) and never above 15, as
    Pennylane counts them; the registry says the first sync is over once it is; the syncs
    after it keep to 3."""
    seeded = await sandbox.seed(TOKEN, count=700, customers=20, products=30, max_lines=3, seed=71)
    ids = set(range(seeded["first_id"], seeded["last_id"] + 1))
    await sandbox.admin("DELETE", f"/_sandbox/{TOKEN}/requests")
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(
            poller,
            "tenant-a",
            TOKEN,
            poller_rate_share="0.12",
            poller_first_sync_rate_share="0.6",
        )
        await _set_interval(settings, "tenant-a", 3600)

        async def running() -> bool:
            row = await _registry_row(settings, "tenant-a")
            return row is not None and row.first_sync_started_at is not None

        assert await _wait(running), "the registry records the first sync while it runs"
        assert await _wait(lambda: _has_succeeded(poller, "tenant-a"), timeout_s=240)
        first_sync = await sandbox.admin("GET", f"/_sandbox/{TOKEN}/requests")
        row = await _registry_row(settings, "tenant-a")
        assert row is not None
        assert row.first_sync_started_at is None
        assert row.first_sync_ended_at is not None

        await sandbox.admin("DELETE", f"/_sandbox/{TOKEN}/requests")
        for _ in range(4):
            await _sync_once_more(poller, "tenant-a")
        await reader.until(lambda events: ids <= documents(events).keys())
        assert ids <= documents(reader.events).keys()
    after = await sandbox.admin("GET", f"/_sandbox/{TOKEN}/requests")
    assert 3 < first_sync["max_received_in_any_window"] <= 15, first_sync[
        "max_received_in_any_window"
    ]
    assert len(after["requests"]) > 3 * 3, "long enough to span several windows"
    assert after["max_received_in_any_window"] <= 3, after["max_received_in_any_window"]
    assert not [e for e in first_sync["requests"] + after["requests"] if e["status"] == 429]


async def test_disconnect_while_reading_purchase_order_lines_sends_nothing_more(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    """Purchase orders cost one lines request each within a page: the disconnect lands in the
    middle of such a page (seen in the sandbox's log), and not one more request follows it."""
    await sandbox.seed(TOKEN, count=1, customers=2, products=3, seed=61)
    customer_id = (await sandbox.admin("GET", f"/_sandbox/{TOKEN}/records/customers"))["items"][0][
        "id"
    ]
    product_id = (await sandbox.admin("GET", f"/_sandbox/{TOKEN}/records/products"))["items"][0][
        "id"
    ]
    body = {
        "customer_id": customer_id,
        "invoice_lines": [{"product_id": product_id, "quantity": 1}],
    }
    orders = {
        (await sandbox.admin("POST", f"/_sandbox/{TOKEN}/commercial_documents", body))["id"]
        for _ in range(30)  # more than one page of 20: the disconnect lands within the first
    }

    async def lines_requests() -> int:
        log = await sandbox.admin("GET", f"/_sandbox/{TOKEN}/requests")
        return sum(1 for entry in log["requests"] if entry["path"].endswith("/invoice_lines"))

    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=3600, poller_rate_share="0.4")
        # A page is 20 orders (page_size=20): after 8 lines requests the page is half read.
        assert await _wait(lambda: _more_than(lines_requests, 8), timeout_s=240)
        response = await poller.post("/connections/tenant-a/disconnect")
        answered_at = time.time()
        assert not response.json()["syncing"]
        # Room for a sync that failed to stop to show itself; not a timed assertion.
        await asyncio.sleep(6)
        log = await sandbox.admin("GET", f"/_sandbox/{TOKEN}/requests")
        late = [entry for entry in log["requests"] if entry["at"] > answered_at]
        assert not late, f"{len(late)} requests after the disconnect: {late[:3]}"

        await poller.post("/connections/tenant-a/reconnect")
        await reader.until(lambda events: orders <= documents(events).keys(), timeout_s=240)
        read = documents(reader.events)
        assert orders <= read.keys()
        assert all(len(read[i]) == 1 for i in orders), "each purchase order published once"


async def _more_than(count: Callable[[], Awaitable[int]], threshold: int) -> bool:
    return await count() > threshold


async def test_a_dead_lettered_connect_command_keeps_no_token(
    poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    command = new_event(ConnectTenant(pennylane_token="leaky-token-42"), "tenant-z")
    body = command.model_dump(mode="json")
    body["payload"]["settings"]["sync_interval_s"] = 1  # below the 5 s minimum: rejected
    await publish_raw(
        settings.kafka_bootstrap_servers,
        CONNECTION_COMMANDS.name(settings.topic_prefix),
        b"tenant-z",
        json.dumps(body).encode(),
    )

    async def dead_lettered() -> bool:
        return bool((await poller.get("/operations/dead-letters")).json())

    assert await _wait(dead_lettered)
    [dead] = (await poller.get("/operations/dead-letters")).json()
    assert "sync_interval_s" in dead["reason"]
    assert "leaky-token-42" not in json.dumps(dead)
    assert json.loads(dead["value"])["payload"]["pennylane_token"] == "**redacted**"


async def test_a_document_too_large_for_a_message_is_set_aside_and_the_sync_goes_on(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    """An invoice of thousands of lines cannot be one Kafka message: it is kept as a dead
    letter naming why, and the tenant's other documents are published by the same sync."""
    big = await sandbox.seed(TOKEN, count=1, min_lines=9_000, max_lines=9_000, seed=11)
    small = await sandbox.seed(TOKEN, count=3, max_lines=3, seed=12)
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    small_ids = set(range(small["first_id"], small["last_id"] + 1))
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN, sync_interval_s=3600)
        await reader.until(lambda events: small_ids <= documents(events).keys(), timeout_s=180)
        assert big["first_id"] not in documents(reader.events)

    dead = (await poller.get("/operations/dead-letters")).json()
    [kept] = [row for row in dead if row["offset"] == big["first_id"]]
    assert kept["error_type"] == "MessageTooLarge"
    assert "lines" in kept["reason"]
    assert kept["consumer_group"] == "poller.sync"
    assert await _wait(lambda: _last_success(poller, "tenant-a")), "the sync succeeded"


def _runs(events: list[Envelope[Payload]]) -> list[SyncRunFinished]:
    return [e.payload for e in events if isinstance(e.payload, SyncRunFinished)]


async def test_each_run_tells_how_it_ended_and_a_refused_token_says_so(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    seeded = await sandbox.seed(TOKEN, count=8, credit_note_share=0.0, draft_share=0.0, seed=11)
    documents_seeded = seeded["last_id"] - seeded["first_id"] + 1
    topic = POLLER_SYNC_RUNS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN)
        await reader.until(lambda events: any(r.outcome == "succeeded" for r in _runs(events)))
        [first, *_] = _runs(reader.events)
        assert first.outcome == "succeeded"
        assert first.documents_published == documents_seeded
        assert "customer_invoices" in first.streams
        assert first.finished_at >= first.started_at
        assert first.error_kind is None
        assert set(reader.keys) == {b"tenant-a"}

        # Pennylane refuses the token (no scope left): the run says why, in the report's words.
        await sandbox.admin("PUT", f"/_sandbox/{TOKEN}/scopes", {"scopes": []})
        response = await poller.post("/connections/tenant-a/import-now", json={"what": "invoices"})
        assert response.status_code == 202, response.text
        await reader.until(lambda events: any(r.outcome == "failed" for r in _runs(events)))
        failed = next(r for r in _runs(reader.events) if r.outcome == "failed")
        assert failed.error_kind == "token_rejected"
        assert failed.error is not None
        assert TOKEN not in failed.error


async def _requests_with(sandbox: Sandbox, token: str) -> int:
    return len((await sandbox.admin("GET", f"/_sandbox/{token}/requests"))["requests"])


async def test_a_refused_token_stops_every_request_until_a_new_one_then_resumes(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    """Pennylane answers 401 (the token was revoked): the connection needs a new token, and the
    poller sends nothing more for the tenant, on schedule or on demand, while the other tenant
    goes on; connecting a new token of the same company resumes from the watermarks."""
    first = await sandbox.seed(TOKEN, count=6, seed=31)
    first_ids = set(range(first["first_id"], first["last_id"] + 1))
    new_token = "tenant-a-token-renewed"
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "tenant-a", TOKEN)
        await _connect(poller, "tenant-b", TOKEN_B)
        await _set_interval(settings, "tenant-a", 5)
        await _set_interval(settings, "tenant-b", 5)
        await reader.until(lambda events: first_ids <= documents(events).keys())
        assert first_ids <= documents(reader.events).keys()
        assert await _wait(lambda: _last_success(poller, "tenant-a"))

        await sandbox.admin("POST", f"/_sandbox/{TOKEN}/revoke", {"new_token": new_token})
        while_refused = await sandbox.seed(new_token, count=3, customers=0, products=0, seed=32)
        refused_ids = set(range(while_refused["first_id"], while_refused["last_id"] + 1))

        async def needs_new_token() -> dict[str, Any] | None:
            status: dict[str, Any] = (await poller.get("/connections/tenant-a")).json()
            return status if status["needs_new_token"] else None

        assert await _wait(needs_new_token, timeout_s=30), "the 401 was noticed"
        status = (await poller.get("/connections/tenant-a")).json()
        assert status["status"] == "needs_new_token"
        assert status["token_rejected_at"] is not None
        assert "401" in status["last_error"]
        refused = await poller.post("/connections/tenant-a/import-now", json={"what": "invoices"})
        assert refused.status_code == 409
        assert "new token" in refused.json()["detail"]
        metrics = (await poller.get("/metrics")).text
        assert re.search(
            r"^stockpit_poller_connections_needing_new_token 1\.0", metrics, re.MULTILINE
        )
        assert re.search(r"^stockpit_poller_tenants 1\.0", metrics, re.MULTILINE)

        # Several sync intervals (and failure retries) go by: not one request more.
        sent = await _requests_with(sandbox, TOKEN)
        assert sent >= 1
        b_before = await _last_success(poller, "tenant-b")

        async def two_intervals_passed() -> bool:
            due = dt.datetime.fromisoformat(status["next_sync_at"])
            return dt.datetime.now(dt.UTC) > due + dt.timedelta(seconds=6)

        assert await _wait(two_intervals_passed)
        assert await _wait(lambda: _b_synced_since(poller, b_before)), "the scheduler went on"
        assert await _requests_with(sandbox, TOKEN) == sent, "no request with a refused token"
        paused = (await poller.get("/connections/tenant-a")).json()
        assert paused["last_error"] == status["last_error"], "no sync was even started"
        assert paused["needs_new_token"] is True
        assert refused_ids.isdisjoint(documents(reader.events).keys())

        # A new token of the same company: the sync resumes where it stopped.
        response = await poller.put(
            "/connections/tenant-a", json={"pennylane_token": new_token, "settings": {}}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "connected"
        assert response.json()["needs_new_token"] is False
        await reader.until(lambda events: refused_ids <= documents(events).keys())
        read = documents(reader.events)
        assert refused_ids <= read.keys()
        assert all(len(read[i]) == 1 for i in first_ids), "resumed from the watermarks"
        assert await _requests_with(sandbox, TOKEN) == sent
        metrics = (await poller.get("/metrics")).text
        assert re.search(
            r"^stockpit_poller_connections_needing_new_token 0\.0", metrics, re.MULTILINE
        )
        assert (await poller.post("/connections/tenant-a/import-now")).status_code == 202


async def test_pennylane_down_keeps_the_backoff_and_needs_no_new_token(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    """5xx answers fail the run without pausing the tenant: the next syncs come on their own
    and read what arrived meanwhile, no reconnect needed."""
    await _connect(poller, "tenant-a", TOKEN)
    await _set_interval(settings, "tenant-a", 5)
    assert await _wait(lambda: _last_success(poller, "tenant-a"))
    await sandbox.admin("PUT", "/_sandbox/faults", {"rate_500": 1.0, "token": TOKEN})

    async def failed() -> bool:
        status = (await poller.get("/connections/tenant-a")).json()
        return bool(status["last_error"] and "500" in status["last_error"])

    assert await _wait(failed, timeout_s=120), "a sync met the 500s"
    status = (await poller.get("/connections/tenant-a")).json()
    assert (status["status"], status["needs_new_token"]) == ("connected", False)
    assert (await poller.post("/connections/tenant-a/import-now")).status_code == 202
    more = await sandbox.seed(TOKEN, count=2, customers=1, products=2, seed=33)
    more_ids = set(range(more["first_id"], more["last_id"] + 1))
    await sandbox.admin("PUT", "/_sandbox/faults", {})
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await reader.until(lambda events: more_ids <= documents(events).keys())
        assert more_ids <= documents(reader.events).keys(), "resumed on its own"
    assert (await poller.get("/connections/tenant-a")).json()["needs_new_token"] is False


async def _b_synced_since(poller: httpx.AsyncClient, before: str | None) -> bool:
    return await _last_success(poller, "tenant-b") != before


async def test_a_connect_command_on_kafka_is_refused_and_its_token_never_kept(
    poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    """Connect is HTTP-only: a valid connect command on Kafka is dead-lettered, redacted."""
    command = new_event(ConnectTenant(pennylane_token=TOKEN), "tenant-k")
    body = command.model_dump(mode="json")
    body["payload"]["pennylane_token"] = TOKEN  # as a producer outside this system could
    await publish_raw(
        settings.kafka_bootstrap_servers,
        CONNECTION_COMMANDS.name(settings.topic_prefix),
        b"tenant-k",
        json.dumps(body).encode(),
    )

    async def dead_lettered() -> bool:
        return bool((await poller.get("/operations/dead-letters")).json())

    assert await _wait(dead_lettered)
    [dead] = (await poller.get("/operations/dead-letters")).json()
    assert "HTTP-only" in dead["reason"]
    assert TOKEN not in json.dumps(dead)
    assert (await poller.get("/connections/tenant-k")).status_code == 404


async def test_connecting_proves_the_token_and_pins_the_tenant_to_its_company(
    sandbox: Sandbox, poller: httpx.AsyncClient
) -> None:
    me_a = await _me(sandbox, TOKEN)
    me_b = await _me(sandbox, TOKEN_B)
    assert me_a["company"]["id"] != me_b["company"]["id"]

    refused = await poller.put("/connections/alice", json={"pennylane_token": "not-a-real-token"})
    assert refused.status_code == 422, refused.text
    assert "Pennylane refused this token" in refused.json()["detail"]
    assert (await poller.get("/connections/alice")).status_code == 404

    await _connect(poller, "alice", TOKEN, sync_interval_s=3600)
    status = (await poller.get("/connections/alice")).json()
    assert status["pennylane_company"] == {
        "id": me_a["company"]["id"],
        "name": me_a["company"]["name"],
    }

    stranger = await poller.put("/connections/alice", json={"pennylane_token": TOKEN_B})
    assert stranger.status_code == 409, stranger.text
    detail = stranger.json()["detail"]
    assert f"connected to Pennylane company {me_a['company']['id']}" in detail
    assert f"belongs to company {me_b['company']['id']}" in detail
    assert "/connections/alice/repoint" in detail
    assert TOKEN_B not in detail
    assert (await poller.get("/connections/alice")).json()["pennylane_company"]["id"] == (
        me_a["company"]["id"]
    )
    # The same token again (or a renewed one of the same company) is fine; reconnect proves it.
    await _connect(poller, "alice", TOKEN, sync_interval_s=3600)
    assert (await poller.post("/connections/alice/reconnect")).status_code == 200


async def test_repointing_moves_the_tenant_and_its_sync_starts_over(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    # The new company's invoices are older, with lower ids, than the old one's: kept
    # watermarks would skip them; only a sync started over reads them.
    seeded_b = await sandbox.seed(TOKEN_B, count=12, seed=62)
    seeded_a = await sandbox.seed(TOKEN, count=15, seed=61)
    ids_a = set(range(seeded_a["first_id"], seeded_a["last_id"] + 1))
    ids_b = set(range(seeded_b["first_id"], seeded_b["last_id"] + 1))
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        await _connect(poller, "alice", TOKEN, sync_interval_s=3600)
        await reader.until(lambda events: ids_a <= documents(events).keys())
        engine = create_async_engine(settings.database_url.get_secret_value())
        streams_table = f'"{settings.db_schema}".streams'
        try:
            async with engine.connect() as db:
                before = await db.scalar(
                    sa.text(f"SELECT count(*) FROM {streams_table} WHERE tenant_id = 'alice'")
                )
            assert before, "the first sync kept watermarks"

            moved = await poller.post(
                "/connections/alice/repoint",
                json={"pennylane_token": TOKEN_B, "settings": {"documents_since": ALL_HISTORY}},
            )
            assert moved.status_code == 200, moved.text
            me_b = await _me(sandbox, TOKEN_B)
            assert moved.json()["pennylane_company"]["id"] == me_b["company"]["id"]
            await reader.until(lambda events: ids_b <= documents(events).keys())
        finally:
            await engine.dispose()
    assert ids_b <= documents(reader.events).keys(), "the new company is read from the start"
    # Inventory and outbound are told, so that they forget the old company's ids too.
    me_a = await _me(sandbox, TOKEN)
    [record] = await read_topic(
        settings.kafka_bootstrap_servers, CONNECTION_EVENTS.name(settings.topic_prefix), expect=1
    )
    assert record.key == partition_key("alice")
    event = parse_event(record.value)
    assert event.tenant_id == "alice"
    assert event.payload == ConnectionRepointed(
        pennylane_company_id=me_b["company"]["id"],
        previous_pennylane_company_id=me_a["company"]["id"],
    )


async def _me(sandbox: Sandbox, token: str) -> Any:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        response = await client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return response.json()


async def test_connecting_imports_documents_from_the_connection_day_unless_told_otherwise(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    past = await sandbox.seed(TOKEN, count=5, seed=81)  # dated yesterday
    todays = await sandbox.seed(TOKEN, count=2, seed=82, start_date=today.isoformat())
    ids_past = set(range(past["first_id"], past["last_id"] + 1))
    ids_today = set(range(todays["first_id"], todays["last_id"] + 1))
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        connected = await poller.put("/connections/alice", json={"pennylane_token": TOKEN})
        assert connected.status_code == 200, connected.text
        assert connected.json()["settings"]["documents_since"] == today.isoformat()
        await reader.until(lambda events: ids_today <= documents(events).keys())

        async def synced() -> bool:
            status = (await poller.get("/connections/alice")).json()
            return status["last_successful_sync_at"] is not None

        assert await _wait(synced)
    assert not ids_past & documents(reader.events).keys(), "history before today is not read"

    # An earlier day, given, is kept and shown; a new token without one keeps it.
    await _connect(poller, "alice", TOKEN, documents_since="2025-01-31")
    again = await poller.put("/connections/alice", json={"pennylane_token": TOKEN})
    assert again.json()["settings"]["documents_since"] == "2025-01-31"
    shown = (await poller.get("/connections/alice")).json()
    assert shown["settings"]["documents_since"] == "2025-01-31"


async def _cut_connections(engine: AsyncEngine, admin: AsyncEngine) -> int:
    """Terminate the backends of `engine`'s pooled connections (and only those: the database
    is shared), as a failover or an administrator would; the pool does not know yet."""
    pool_size = 10
    ready = asyncio.Event()
    pids: list[int] = []

    async def hold() -> None:
        async with engine.connect() as connection:
            pids.append(int(await connection.scalar(sa.text("SELECT pg_backend_pid()"))))
            if len(pids) == pool_size:
                ready.set()
            await ready.wait()

    await asyncio.gather(*(hold() for _ in range(pool_size)))
    async with admin.connect() as connection:
        cut = await connection.scalar(
            sa.text(
                "SELECT count(*) FROM unnest(CAST(:pids AS int[])) AS p"
                " WHERE pg_terminate_backend(p)"
            ),
            {"pids": pids},
        )
    return int(cut or 0)


async def test_syncs_go_on_after_the_database_cut_the_poller_connections(
    sandbox: Sandbox, settings: PollerSettings
) -> None:
    """Drill: the backends of the poller's pooled connections are terminated, three times, while
    it syncs a tenant every 5 s. Nothing is lost and nothing stays stuck: every invoice is
    published, later syncs succeed, every run has ended and the lease is given back."""
    tenant = "tenant-a"
    seeded = await sandbox.seed(TOKEN, count=5, seed=31)
    ids = set(range(seeded["first_id"], seeded["last_id"] + 1))
    schema = settings.db_schema
    admin = create_async_engine(settings.database_url.get_secret_value())
    app: FastAPI = create_app(settings)
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    try:
        async with (
            running_service(app),
            authorized_client(app, "http://poller") as poller,
            TopicReader(settings.kafka_bootstrap_servers, topic) as reader,
        ):
            await _connect(poller, tenant, TOKEN)
            await _set_interval(settings, tenant, 5)
            await reader.until(lambda events: ids <= documents(events).keys())
            assert ids <= documents(reader.events).keys()
            engine = app.state.runtime.engine
            for round_ in range(3):
                assert await _cut_connections(engine, admin) > 0
                cut_at = dt.datetime.now(dt.UTC)
                more = await sandbox.seed(TOKEN, count=2, customers=0, products=0, seed=40 + round_)
                ids |= set(range(more["first_id"], more["last_id"] + 1))
                wanted = frozenset(ids)

                def published_all(
                    events: list[Envelope[Payload]], wanted: frozenset[int] = wanted
                ) -> bool:
                    return wanted <= documents(events).keys()

                await reader.until(published_all)
                assert published_all(reader.events), f"lost after cut {round_}"

                async def succeeded_since(since: dt.datetime = cut_at) -> bool:
                    last = await _last_success(poller, tenant)
                    return last is not None and dt.datetime.fromisoformat(last) > since

                assert await _wait(succeeded_since), f"no sync succeeded after cut {round_}"
            response = await poller.post(f"/connections/{tenant}/disconnect")
            assert response.json()["status"] == "disconnected"
        async with admin.connect() as connection:
            unfinished = await connection.scalar(
                sa.text(f'SELECT count(*) FROM "{schema}".sync_runs WHERE finished_at IS NULL')
            )
            held = await connection.scalar(
                sa.text(f'SELECT lease_owner FROM "{schema}".tenants WHERE tenant_id = :t'),
                {"t": tenant},
            )
        assert unfinished == 0, "a run never ended"
        assert held is None, "the lease was never given back"
    finally:
        await admin.dispose()


@contextmanager
def statements_of_syncs() -> Iterator[list[str]]:
    """The SQL sent by tasks running a tenant's sync (`sync-<tenant>`), in order."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return
        if task is not None and task.get_name().startswith("sync-"):
            seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


async def test_a_sync_with_new_invoices_makes_five_requests_and_few_statements(
    sandbox: Sandbox, poller: httpx.AsyncClient, settings: PollerSettings
) -> None:
    """What a sync on schedule costs a replica, guarded: a tenant with no purchase order and
    two new invoices since its last sync. Five requests (three changelogs, the new invoices,
    one listing of the purchase orders) and 13 statements (the two COPYs into the outbox not
    counted): the registry's two reads, the watermarks, one session reading what was
    published and the snapshots, the page's commit (lease, relay wake-up, published versions,
    watermark), the recheck cursor with its count, the run's report and its end with the
    lease given back."""
    await sandbox.seed(TOKEN, count=10, customers=4, products=6, seed=21)
    await _connect(poller, "tenant-a", TOKEN, sync_interval_s=3600)
    assert await _wait(lambda: _has_succeeded(poller, "tenant-a"))
    await _sync_once_more(poller, "tenant-a")
    seeded = await sandbox.seed(TOKEN, count=2, customers=0, products=0, seed=22)
    sandbox.app.request_log.clear(TOKEN)
    topic = PENNYLANE_DOCUMENTS.name(settings.topic_prefix)
    async with TopicReader(settings.kafka_bootstrap_servers, topic) as reader:
        with statements_of_syncs() as seen:
            await _sync_once_more(poller, "tenant-a")
        new_ids = {seeded["first_id"], seeded["last_id"]}
        await reader.until(lambda events: new_ids <= documents(events).keys())
    assert new_ids <= documents(reader.events).keys()
    log = sandbox.app.request_log.entries(TOKEN)
    requests = [(r.method, r.path.removeprefix(API)) for r in log]
    assert sorted(requests) == [
        ("GET", "/changelogs/customer_invoices"),
        ("GET", "/changelogs/customers"),
        ("GET", "/changelogs/products"),
        ("GET", "/commercial_documents"),
        ("GET", "/customer_invoices"),
    ]
    assert len(seen) <= 13, "\n".join(" ".join(s.split())[:120] for s in seen)
