"""Outbound in-process against the sandbox over real HTTP, with real Kafka and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from outbound.domain.vat import invoice_amounts
from outbound.entrypoints.app import OutboundSettings, create_app
from stockpit_contracts import parse_event
from stockpit_contracts.payloads.catalog import PostalAddress
from stockpit_contracts.payloads.connections import ConnectionRepointed
from stockpit_contracts.payloads.outbound import (
    CustomerWriteRequested,
    PennylaneIdAssigned,
    PennylaneWriteFailed,
    ProductChangeRequested,
    ReceiptLine,
    ReceiptSendRequested,
)
from stockpit_contracts.topics import CONNECTION_EVENTS, OUTBOUND_RESULTS
from stockpit_testing.fixtures import authorized_client, read_topic, running_service
from stockpit_testing.inventory import publish, scalar

pytestmark = pytest.mark.integration

PARIS = PostalAddress(
    address="8 rue de la paix", postal_code="75002", city="Paris", country_alpha2="FR"
)


@pytest.fixture
def outbound_for(
    kafka_bootstrap_servers: str, database_url: str, topic_prefix: str, db_schema: str
) -> Callable[..., Any]:
    @asynccontextmanager
    async def run(sandbox: Any, tokens: Any, **overrides: Any) -> AsyncIterator[FastAPI]:
        settings = OutboundSettings(
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
            DATABASE_URL=database_url,
            topic_prefix=topic_prefix,
            db_schema=db_schema,
            pennylane_base_url=sandbox.api_url,
            pennylane_timeout_s=5,
            poller_budget_share=Decimal("0.2"),
            write_retry_base_s=0.2,
            write_retry_max_s=1,
            ambiguous_settle_s=0.5,
            disconnected_recheck_s=0.3,
            worker_poll_s=0.1,
            startup_quiet_s=0,
            **overrides,
        )
        app = create_app(settings, tokens=tokens)
        async with running_service(app):
            yield app

    return run


def api(app: FastAPI) -> httpx.AsyncClient:
    return authorized_client(app, "http://outbound")


async def results(bootstrap: str, prefix: str, expect: int) -> list[Any]:
    records = await read_topic(
        bootstrap, OUTBOUND_RESULTS.name(prefix), expect=expect, timeout_s=60
    )
    return [parse_event(record.value) for record in records]


async def test_products_customers_and_receipts_reach_pennylane_once(
    sandbox_for: Any, outbound_for: Any, kit: Any, kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    sandbox = sandbox_for(["acme"])
    product_id = sandbox.create_product("acme", "Chaise", "CH-1")
    tokens = kit.SwitchableTokens(dict(sandbox.tokens))
    lines = (
        ReceiptLine(
            label="Vis",
            quantity=Decimal(12),
            unit_price_before_tax=Decimal("3.335"),
            vat_rate="FR_200",
        ),
        ReceiptLine(
            label="Livre",
            quantity=Decimal(1),
            unit_price_before_tax=Decimal("20"),
            vat_rate="FR_55",
        ),
        ReceiptLine(
            label="Clous",
            quantity=Decimal(3),
            unit_price_before_tax=Decimal("0.10"),
            vat_rate="FR_200",
        ),
    )
    events = [
        kit.event(
            "acme",
            ProductChangeRequested(
                product_id="p1",
                pennylane_product_id=product_id,
                label="Chaise bleue",
                reference="CH-1B",
                changed_at=kit.now(),
            ),
        ),
        kit.event(
            "acme",
            CustomerWriteRequested(
                customer_id="c1",
                kind="company",
                name="Dupont SARL",
                emails=("a@dupont.fr",),
                billing_address=PARIS,
                changed_at=kit.now(),
            ),
        ),
        kit.event(
            "acme",
            CustomerWriteRequested(
                customer_id="c2",
                kind="individual",
                name="Jeanne Martin",
                billing_address=PARIS,
                changed_at=kit.now(),
            ),
        ),
        kit.event(
            "acme",
            ReceiptSendRequested(
                receipt_id="r1",
                purchase_id="po1",
                supplier_name="Quincaillerie Dupré",
                received_on=dt.date(2026, 3, 2),
                lines=lines,
            ),
        ),
        kit.event(
            "acme",
            ReceiptSendRequested(
                receipt_id="r2",
                purchase_id="po2",
                supplier_name="quincaillerie  dupré",
                received_on=dt.date(2026, 3, 3),
                lines=lines[:1],
            ),
        ),
    ]
    async with outbound_for(sandbox, tokens) as app:
        await kit.publish(kafka_bootstrap_servers, topic_prefix, events)
        got = await results(kafka_bootstrap_servers, topic_prefix, expect=5)
        async with api(app) as client:
            pending = (await client.get("/outbound/writes")).json()
            done = (await client.get("/outbound/writes", params={"status": "done"})).json()
    assigned = {(e.payload.entity_kind, e.payload.entity_id): e.payload.pennylane_id for e in got}
    assert all(isinstance(e.payload, PennylaneIdAssigned) for e in got)
    assert pending == []
    assert len(done) == 5

    product = next(p for p in sandbox.records("acme", "products") if p["id"] == product_id)
    assert (product["label"], product["reference"]) == ("Chaise bleue", "CH-1B")
    assert assigned[("product", "p1")] == product_id

    customers = {c["external_reference"]: c for c in sandbox.records("acme", "customers")}
    assert set(customers) == {"stockpit:acme:customer:c1", "stockpit:acme:customer:c2"}
    company = customers["stockpit:acme:customer:c1"]
    assert (company["customer_type"], company["name"], company["emails"]) == (
        "company",
        "Dupont SARL",
        ["a@dupont.fr"],
    )
    assert company["billing_address"]["city"] == "Paris"
    person = customers["stockpit:acme:customer:c2"]
    assert (person["first_name"], person["last_name"]) == ("Jeanne", "Martin")
    assert assigned[("customer", "c1")] == company["id"]

    suppliers = sandbox.records("acme", "suppliers")
    # One supplier for both receipts: the second found the first's by name, case and spacing aside.
    assert [s["name"].casefold() for s in suppliers] == ["quincaillerie dupré"]
    invoices = {i["external_reference"]: i for i in sandbox.records("acme", "supplier_invoices")}
    assert set(invoices) == {"stockpit:acme:receipt:r1", "stockpit:acme:receipt:r2"}
    first = invoices["stockpit:acme:receipt:r1"]
    expected = invoice_amounts(lines)
    assert Decimal(first["currency_amount_before_tax"]) == expected.before_tax == Decimal("60.32")
    assert Decimal(first["currency_tax"]) == expected.tax == Decimal("9.16")  # 8.06 + 1.10
    assert Decimal(first["currency_amount"]) == expected.total
    assert first["supplier"]["id"] == suppliers[0]["id"]
    assert assigned[("receipt", "r1")] == first["id"]
    company_state = sandbox.app.sandbox.companies[sandbox.tokens["acme"]]
    pdfs = [file.content for file in company_state.file_attachments.records.values()]
    assert len(pdfs) == 2
    assert all(pdf.startswith(b"%PDF-") and b"%%EOF" in pdf for pdf in pdfs)


async def test_a_customer_pennylane_cannot_hold_is_dead_lettered_once_and_replayable(
    sandbox_for: Any, outbound_for: Any, kit: Any, kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    sandbox = sandbox_for(["acme"])
    tokens = kit.SwitchableTokens(dict(sandbox.tokens))
    no_address = kit.event(
        "acme",
        CustomerWriteRequested(
            customer_id="c9", kind="company", name="Sans Adresse", changed_at=kit.now()
        ),
    )
    async with outbound_for(sandbox, tokens) as app:
        await kit.publish(kafka_bootstrap_servers, topic_prefix, [no_address])
        (failed,) = await results(kafka_bootstrap_servers, topic_prefix, expect=1)
        async with api(app) as client:
            letters = (await client.get("/outbound/dead-letters")).json()
            failed_writes = (
                await client.get("/outbound/writes", params={"status": "failed"})
            ).json()
            replayed = await client.post(f"/outbound/dead-letters/{letters[0]['id']}/replay")
            again = await client.post(f"/outbound/dead-letters/{letters[0]['id']}/replay")
            missing = await client.post("/outbound/dead-letters/999999/replay")
            after = await results(kafka_bootstrap_servers, topic_prefix, expect=2)
            letters_after = (
                await client.get("/outbound/dead-letters", params={"include_replayed": True})
            ).json()
    assert isinstance(failed.payload, PennylaneWriteFailed)
    assert failed.payload.retryable is False
    assert "billing address" in failed.payload.reason
    assert failed.causation_id == no_address.event_id
    assert len(letters) == 1
    assert letters[0]["entity_id"] == "c9"
    assert letters[0]["request"]["customer"]["name"] == "Sans Adresse"
    assert [w["entity_id"] for w in failed_writes] == ["c9"]
    assert failed_writes[0]["attempts"] == 1  # no retry loop
    assert sandbox.records("acme", "customers") == []
    # Replaying sends it again (and it fails again: the data is still incomplete).
    assert replayed.status_code == 202
    assert again.status_code == 409
    assert missing.status_code == 404
    assert [type(e.payload) for e in after] == [PennylaneWriteFailed, PennylaneWriteFailed]
    assert len(letters_after) == 2
    assert letters_after[0]["replayed_at"] is not None


async def test_a_4xx_is_dead_lettered_at_once_with_request_and_response(
    sandbox_for: Any, outbound_for: Any, kit: Any, kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    sandbox = sandbox_for(["acme"])
    tokens = kit.SwitchableTokens(dict(sandbox.tokens))
    gone = kit.event(
        "acme",
        ProductChangeRequested(
            product_id="p404", pennylane_product_id=424242, label="X", changed_at=kit.now()
        ),
    )
    async with outbound_for(sandbox, tokens) as app:
        await kit.publish(kafka_bootstrap_servers, topic_prefix, [gone])
        (failed,) = await results(kafka_bootstrap_servers, topic_prefix, expect=1)
        async with api(app) as client:
            (letter,) = (await client.get("/outbound/dead-letters")).json()
    assert isinstance(failed.payload, PennylaneWriteFailed)
    assert failed.payload.retryable is False
    assert letter["request"] == {"method": "GET", "path": "products/424242"}
    assert letter["response"]["status"] == 404
    assert letter["attempts"] == 1
    assert "424242" in letter["reason"]
    assert len(sandbox.requests("acme")["requests"]) == 1


async def test_a_disconnected_tenant_waits_then_sends_in_order(
    sandbox_for: Any, outbound_for: Any, kit: Any, kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    sandbox = sandbox_for(["acme", "other"])
    product_id = sandbox.create_product("acme", "Table", "T-0")
    other_product = sandbox.create_product("other", "Lampe", "L-0")
    tokens = kit.SwitchableTokens(dict(sandbox.tokens), disconnected={"acme"})
    changes = [
        kit.event(
            "acme",
            ProductChangeRequested(
                product_id="p1",
                pennylane_product_id=product_id,
                label=f"Table v{n}",
                reference=f"T-{n}",
                changed_at=kit.now(),
            ),
        )
        for n in range(1, 6)
    ]
    other = kit.event(
        "other",
        ProductChangeRequested(
            product_id="p1",
            pennylane_product_id=other_product,
            label="Lampe v1",
            changed_at=kit.now(),
        ),
    )
    async with outbound_for(sandbox, tokens) as app:
        await kit.publish(kafka_bootstrap_servers, topic_prefix, [*changes, other])
        # The connected tenant is not held up by the disconnected one.
        (first,) = await results(kafka_bootstrap_servers, topic_prefix, expect=1)
        assert first.tenant_id == "other"
        async with api(app) as client:
            waiting = await kit.wait_until(lambda: _pending(client, "acme", expect=5), timeout_s=60)
            asked_while_disconnected = tokens.asked.count("acme")
            await kit.wait_until(lambda: tokens.asked.count("acme") >= asked_while_disconnected + 2)
        assert all(w["attempts"] == 0 for w in waiting)  # stored, not tried
        assert len(sandbox.requests("acme")["requests"]) == 1  # only the test's own product create
        tokens.disconnected.clear()
        got = await results(kafka_bootstrap_servers, topic_prefix, expect=6)
    assert sorted(e.tenant_id for e in got) == ["acme"] * 5 + ["other"]
    product = next(p for p in sandbox.records("acme", "products") if p["id"] == product_id)
    assert (product["label"], product["reference"]) == ("Table v5", "T-5")
    # Every change was written, in order: the product changelog shows five updates.
    assert sandbox.writes("acme")[("products", product["external_reference"])] == 1 + 5
    puts = [r for r in sandbox.requests("acme")["requests"] if r["method"] == "PUT"]
    assert len(puts) == 5


async def _pending(
    client: httpx.AsyncClient, tenant: str, expect: int, status: str | None = None
) -> list[Any] | None:
    """The tenant's writes (pending and failed, or of `status`) once there are `expect`."""
    params = {"tenant_id": tenant} if status is None else {"tenant_id": tenant, "status": status}
    rows = (await client.get("/outbound/writes", params=params)).json()
    return rows if len(rows) == expect else None


def _rename_in_pennylane(sandbox: Any, tenant: str, product_id: int, label: str) -> None:
    response = httpx.put(
        f"{sandbox.api_url}/products/{product_id}",
        headers={"Authorization": f"Bearer {sandbox.tokens[tenant]}"},
        json={"label": label},
        timeout=30,
    )
    response.raise_for_status()


async def test_renames_on_both_sides_while_disconnected_follow_the_later_one(
    sandbox_for: Any, outbound_for: Any, kit: Any, kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    """Rule 13: Stockpit renamed then Pennylane renamed → Pennylane's stands (nothing written);
    Pennylane renamed then Stockpit renamed → Stockpit's is written. A SKU cleared in Stockpit
    is a failed write saying Pennylane cannot clear it (issue 14 items 4 and 8)."""
    sandbox = sandbox_for(["acme"])
    stockpit_first = sandbox.create_product("acme", "Chaise", "CH-1")
    pennylane_first = sandbox.create_product("acme", "Table", "T-1")
    cleared = sandbox.create_product("acme", "Lampe", "L-1")
    records = {p["id"]: p for p in sandbox.records("acme", "products")}
    tokens = kit.SwitchableTokens(dict(sandbox.tokens), disconnected={"acme"})

    def request(product_id: int, label: str, reference: str | None) -> Any:
        seen = records[product_id]
        return kit.event(
            "acme",
            ProductChangeRequested(
                product_id=f"p{product_id}",
                pennylane_product_id=product_id,
                label=label,
                reference=reference,
                changed_at=kit.now(),
                pennylane_label=seen["label"],
                pennylane_reference=seen["reference"],
                pennylane_updated_at=dt.datetime.fromisoformat(seen["updated_at"]),
            ),
        )

    async with outbound_for(sandbox, tokens) as app:
        # While disconnected: Stockpit renames the chair, then Pennylane does (later)...
        await kit.publish(
            kafka_bootstrap_servers, topic_prefix, [request(stockpit_first, "Chaise A", "CH-1")]
        )
        _rename_in_pennylane(sandbox, "acme", stockpit_first, "Chaise B")
        # ...Pennylane renames the table, then Stockpit does (later); Stockpit clears a SKU.
        _rename_in_pennylane(sandbox, "acme", pennylane_first, "Table B")
        await kit.publish(
            kafka_bootstrap_servers,
            topic_prefix,
            [request(pennylane_first, "Table A", "T-1"), request(cleared, "Lampe", None)],
        )
        async with api(app) as client:
            await kit.wait_until(lambda: _pending(client, "acme", expect=3), timeout_s=60)
            tokens.disconnected.clear()  # reconnected
            # The table's id (written) and the lamp's failure; nothing for the chair.
            got = await results(kafka_bootstrap_servers, topic_prefix, expect=2)
            rows = await kit.wait_until(lambda: _settled(client, "acme", expect=3), timeout_s=60)
    labels = {p["id"]: (p["label"], p["reference"]) for p in sandbox.records("acme", "products")}
    assert labels[stockpit_first] == ("Chaise B", "CH-1")
    assert labels[pennylane_first] == ("Table A", "T-1")
    assert labels[cleared] == ("Lampe", "L-1")
    status = {row["entity_id"]: row for row in rows}
    chair = status[f"p{stockpit_first}"]
    assert chair["status"] == "superseded"
    assert "last change wins" in chair["last_error"]
    assert status[f"p{pennylane_first}"]["status"] == "done"
    assert status[f"p{cleared}"]["status"] == "failed"
    by_entity = {e.payload.entity_id: e.payload for e in got}
    assert set(by_entity) == {f"p{pennylane_first}", f"p{cleared}"}
    assert isinstance(by_entity[f"p{pennylane_first}"], PennylaneIdAssigned)
    failed = by_entity[f"p{cleared}"]
    assert isinstance(failed, PennylaneWriteFailed)
    assert failed.entity_id == f"p{cleared}"
    assert "cannot clear" in failed.reason
    assert not failed.retryable
    # Only the table was written (the other two PUTs are the test's renames in Pennylane).
    puts = [r for r in sandbox.requests("acme")["requests"] if r["method"] == "PUT"]
    assert [r["path"].rsplit("/", 1)[-1] for r in puts] == [
        str(stockpit_first),
        str(pennylane_first),
        str(pennylane_first),
    ]


async def _settled(client: httpx.AsyncClient, tenant: str, expect: int) -> list[Any] | None:
    rows = (
        await client.get(
            "/outbound/writes",
            params={"tenant_id": tenant, "status": ["done", "failed", "superseded"]},
        )
    ).json()
    return rows if len(rows) == expect else None


async def test_repointing_supersedes_pending_writes_and_forgets_the_old_companys_records(
    sandbox_for: Any,
    outbound_for: Any,
    kit: Any,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    database_url: str,
    db_schema: str,
) -> None:
    sandbox = sandbox_for(["acme"])
    table = sandbox.create_product("acme", "Table", "T-0")
    chair = sandbox.create_product("acme", "Chaise", "C-0")
    tokens = kit.SwitchableTokens(dict(sandbox.tokens))

    def change(product_id: str, pennylane_id: int, label: str) -> Any:
        return kit.event(
            "acme",
            ProductChangeRequested(
                product_id=product_id,
                pennylane_product_id=pennylane_id,
                label=label,
                changed_at=kit.now(),
            ),
        )

    async def kept(sql: str) -> object:
        return await scalar(database_url, sql.replace("writes", f"{db_schema}.writes"))

    async with outbound_for(sandbox, tokens) as app:
        await kit.publish(kafka_bootstrap_servers, topic_prefix, [change("p0", table, "Table v1")])
        await results(kafka_bootstrap_servers, topic_prefix, expect=1)
        assert await kept("SELECT count(*) FROM writes WHERE written_state IS NOT NULL") == 1
        # Asked while disconnected, for the old company's product: never to reach the new one.
        tokens.disconnected.add("acme")
        stale = [change("p1", chair, "Chaise v1"), change("p1", chair, "Chaise v2")]
        await kit.publish(kafka_bootstrap_servers, topic_prefix, stale)
        async with api(app) as client:
            await kit.wait_until(lambda: _pending(client, "acme", expect=2), timeout_s=60)
            repointed = ConnectionRepointed(pennylane_company_id=2, previous_pennylane_company_id=1)
            await publish(
                kafka_bootstrap_servers,
                CONNECTION_EVENTS,
                topic_prefix,
                [kit.event("acme", repointed)],
            )
            superseded = await kit.wait_until(
                lambda: _pending(client, "acme", expect=2, status="superseded"), timeout_s=60
            )
            assert await _pending(client, "acme", expect=0) == []
        assert [(w["entity_id"], w["attempts"]) for w in superseded] == [("p1", 0), ("p1", 0)]
        assert all("re-pointed" in w["last_error"] for w in superseded)
        assert await kept("SELECT count(*) FROM writes WHERE written_state IS NOT NULL") == 0
        assert await kept("SELECT count(*) FROM writes WHERE progress <> '{}'::jsonb") == 0
        # Reconnected: a new request is written; the superseded ones never are.
        tokens.disconnected.clear()
        await kit.publish(kafka_bootstrap_servers, topic_prefix, [change("p2", table, "Table v2")])
        await results(kafka_bootstrap_servers, topic_prefix, expect=2)
    puts = [r for r in sandbox.requests("acme")["requests"] if r["method"] == "PUT"]
    assert [r["path"].rsplit("/", 1)[-1] for r in puts] == [str(table), str(table)]
