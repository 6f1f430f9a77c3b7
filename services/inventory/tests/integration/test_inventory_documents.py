"""Pennylane documents applied end to end on real Kafka and PostgreSQL: redelivery, versions,
quotes, credit notes, drafts, deletions, services, and a full replay of the topic."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from stockpit_contracts import Envelope, Payload, new_event, parse_event
from stockpit_contracts.payloads.catalog import ProductUpserted
from stockpit_contracts.payloads.documents import DocumentDeleted, DocumentKind
from stockpit_contracts.payloads.inventory import ProblemReported
from stockpit_contracts.topics import INVENTORY_PROBLEMS, PENNYLANE_DOCUMENTS
from stockpit_testing.fixtures import read_topic
from stockpit_testing.inventory import document, fresh, publish, stock_by_pennylane_id, wait_handled

pytestmark = pytest.mark.integration

TENANT = "acme"
D = Decimal
INVOICE, PURCHASE_ORDER, CREDIT_NOTE = (
    DocumentKind.INVOICE,
    DocumentKind.PURCHASE_ORDER,
    DocumentKind.CREDIT_NOTE,
)


def _history() -> list[Envelope[Payload]]:
    """A tenant's document history, with the stock it must end on (see `EXPECTED`)."""
    documents: list[Payload] = [
        # Invoice 1: 5 of product 10, 2 of 11, a service line and a free-text line.
        document(INVOICE, 1, [(10, "5"), (11, "2"), (90, "1"), (None, "1")], service_products=[90]),
        # Purchase order 2 (quote 7): 4 of 12, then edited to 6.
        document(PURCHASE_ORDER, 2, [(12, "4")], quote_id=7, minute=1),
        document(PURCHASE_ORDER, 2, [(12, "6")], quote_id=7, minute=2),
        # Invoice 3 of the same quote bills the 6: one sale, no double decrement.
        document(INVOICE, 3, [(12, "6")], quote_id=7, minute=3),
        # A draft moves nothing.
        document(INVOICE, 4, [(10, "100")], draft=True, minute=4),
        # Purchase order 5, then deleted: its effect is reversed.
        document(PURCHASE_ORDER, 5, [(11, "3")], minute=5),
        # A credit note of invoice 1 (restock off by default: stock unchanged).
        document(CREDIT_NOTE, 6, [(10, "-1")], credited=1, minute=6),
    ]
    events: list[Envelope[Payload]] = [new_event(payload, TENANT) for payload in documents]
    events.append(
        new_event(
            DocumentDeleted(
                kind=PURCHASE_ORDER, pennylane_id=5, deleted_at=document(INVOICE, 5, []).updated_at
            ),
            TENANT,
        )
    )
    return events


EXPECTED = {10: (D(-5), D(0), D(0)), 11: (D(-2), D(0), D(0)), 12: (D(-6), D(0), D(0))}


async def _ledger_size(api: httpx.AsyncClient) -> int:
    total = 0
    for product in (await api.get(f"/tenants/{TENANT}/products")).json():
        total += len(
            (await api.get(f"/tenants/{TENANT}/products/{product['product_id']}/ledger")).json()
        )
    return total


async def test_documents_apply_once_through_redelivery_and_a_full_replay(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
) -> None:
    history = _history()
    group = f"{topic_prefix}inventory.documents"
    # Every event delivered twice (a producer retry): the inbox keeps the second copy out.
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, history + history)
    await wait_handled(database_url, db_schema, group, len(history))
    assert await stock_by_pennylane_id(api, TENANT) == EXPECTED
    entries = await _ledger_size(api)
    orders = (await api.get(f"/tenants/{TENANT}/orders")).json()
    by_documents = {tuple(order["documents"]): order for order in orders}
    assert ("invoice:3", "purchase_order:2") in by_documents, "one order for the quote"
    assert by_documents[("purchase_order:5",)]["status"] == "withdrawn"
    assert by_documents[("invoice:4",)]["status"] == "draft"
    [credit_return] = (await api.get(f"/tenants/{TENANT}/returns")).json()
    assert credit_return["restock"] is False
    assert credit_return["order_id"] == by_documents[("invoice:1",)]["order_id"]

    # The whole topic again from the start, as new events (new ids: the inbox cannot help),
    # and in reverse order: the document versions alone keep the stock where it is.
    replay = [fresh(event) for event in reversed(history)]
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, replay)
    await wait_handled(database_url, db_schema, group, 2 * len(history))
    assert await stock_by_pennylane_id(api, TENANT) == EXPECTED
    assert await _ledger_size(api) == entries, "a replay writes no ledger entry"
    reconciliation = (await api.get(f"/tenants/{TENANT}/reconciliation")).json()
    assert reconciliation == {"balanced": True, "mismatches": []}
    services = [p for p in (await api.get(f"/tenants/{TENANT}/products")).json() if p["is_service"]]
    assert services == [], "services are not imported by default"


async def test_negative_stock_and_a_conflict_are_reported_as_problems(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
) -> None:
    settings = (
        await api.put(
            f"/tenants/{TENANT}/settings", json={"delivery_notes_update_real_stock": True}
        )
    ).json()
    assert settings["delivery_notes_update_real_stock"] is True
    order_v1 = new_event(document(PURCHASE_ORDER, 20, [(30, "5")]), TENANT)
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, [order_v1])
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.documents", 1)
    assert await stock_by_pennylane_id(api, TENANT) == {30: (D(0), D(5), D(0))}
    [order] = (await api.get(f"/tenants/{TENANT}/orders")).json()
    product_id = order["lines"][0]["product_id"]
    delivered = await api.post(
        f"/tenants/{TENANT}/orders/{order['order_id']}/delivery-notes",
        json={"lines": [{"product_id": product_id, "quantity": "4"}]},
    )
    assert delivered.status_code == 201, delivered.text
    assert delivered.json()["delivery_state"] == "partially_delivered"
    # Pennylane lowers the order below what was delivered: a conflict, not an un-delivery.
    order_v2 = new_event(document(PURCHASE_ORDER, 20, [(30, "2")], minute=1), TENANT)
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, [order_v2])
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.documents", 2)
    assert await stock_by_pennylane_id(api, TENANT) == {30: (D(-4), D(0), D(0))}
    records = await read_topic(
        kafka_bootstrap_servers, INVENTORY_PROBLEMS.name(topic_prefix), expect=3
    )
    problems = [parse_event(record.value) for record in records]
    kinds = sorted(p.payload.kind for p in problems if isinstance(p.payload, ProblemReported))
    # Available stock went negative with the reservation, real stock with the delivery.
    assert kinds == ["conflict", "negative_stock", "negative_stock"]
    conflict = next(
        p
        for p in problems
        if isinstance(p.payload, ProblemReported) and p.payload.kind == "conflict"
    )
    assert conflict.causation_id == order_v2.event_id
    assert isinstance(conflict.payload, ProblemReported)
    assert "delivered_exceeds_order" in conflict.payload.reason


async def test_an_event_on_the_wrong_topic_is_dead_lettered_and_the_stream_goes_on(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
) -> None:
    stray = new_event(
        ProductUpserted(
            pennylane_id=40, label="Égarée", updated_at=document(INVOICE, 1, []).updated_at
        ),
        TENANT,
    )
    invoice = new_event(document(INVOICE, 41, [(40, "2")]), TENANT)
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, [stray, invoice])
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.documents", 1)
    assert await stock_by_pennylane_id(api, TENANT) == {40: (D(-2), D(0), D(0))}
    [dead] = (await api.get("/operations/dead-letters")).json()
    assert "does not belong on the documents topic" in dead["reason"]


async def test_a_return_settled_by_its_order_is_restocked_and_edited_over_http(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
) -> None:
    """Rules 10 and 11 through the service: the restock action and an edit of a return of a
    known invoice go through its order (loaded, changed and saved with the return), never
    restock more than the invoice took out, and a cancel then reverses exactly what is out."""
    history = [
        new_event(document(INVOICE, 40, [(50, "5")]), TENANT),
        new_event(document(CREDIT_NOTE, 41, [(50, "-2")], credited=40, minute=1), TENANT),
    ]
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, history)
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.documents", 2)
    assert await stock_by_pennylane_id(api, TENANT) == {50: (D(-5), D(0), D(0))}
    [credit_return] = (await api.get(f"/tenants/{TENANT}/returns")).json()
    url = f"/tenants/{TENANT}/returns/{credit_return['return_id']}"
    restocked = await api.post(f"{url}/restock")
    assert restocked.status_code == 200, restocked.text
    assert await stock_by_pennylane_id(api, TENANT) == {50: (D(-3), D(0), D(0))}
    product_id = credit_return["lines"][0]["product_id"]
    edited = await api.patch(url, json={"lines": [{"product_id": product_id, "quantity": "9"}]})
    assert edited.status_code == 200, edited.text
    assert await stock_by_pennylane_id(api, TENANT) == {}, "all 5 back, not 9"
    [order] = (await api.get(f"/tenants/{TENANT}/orders")).json()
    cancelled = await api.post(f"/tenants/{TENANT}/orders/{order['order_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert await stock_by_pennylane_id(api, TENANT) == {}
    reconciliation = (await api.get(f"/tenants/{TENANT}/reconciliation")).json()
    assert reconciliation == {"balanced": True, "mismatches": []}
