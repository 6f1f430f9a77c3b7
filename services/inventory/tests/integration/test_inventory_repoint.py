"""A tenant re-pointed to another Pennylane company (`connection.repointed`): inventory forgets
every link to the old company's ids, so the new company's records, numbered alike, never match
what Stockpit kept of the old one; Stockpit's own records, stock and ledger stay."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from stockpit_contracts import Envelope, Payload, new_event
from stockpit_contracts.payloads.catalog import CustomerUpserted, ProductUpserted
from stockpit_contracts.payloads.connections import ConnectionRepointed
from stockpit_contracts.payloads.documents import DocumentKind
from stockpit_contracts.topics import CONNECTION_EVENTS, PENNYLANE_CATALOG, PENNYLANE_DOCUMENTS
from stockpit_testing.inventory import document, publish, wait_handled

pytestmark = pytest.mark.integration

TENANT = "acme"
D = Decimal
INVOICE, CREDIT_NOTE = DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE
AT = document(INVOICE, 1, []).updated_at


def _company(product_label: str, sku: str, customer_name: str) -> list[Envelope[Payload]]:
    """One company's catalog: product 42 and customer 5 (both companies number them alike)."""
    return [
        new_event(
            ProductUpserted(pennylane_id=42, label=product_label, reference=sku, updated_at=AT),
            TENANT,
        ),
        new_event(
            CustomerUpserted(pennylane_id=5, kind="company", name=customer_name, updated_at=AT),
            TENANT,
        ),
    ]


async def _get(api: httpx.AsyncClient, path: str) -> Any:
    response = await api.get(f"/tenants/{TENANT}{path}")
    response.raise_for_status()
    return response.json()


async def _real_by_product(api: httpx.AsyncClient) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for row in await _get(api, "/stock?limit=500"):
        totals[row["product_id"]] = totals.get(row["product_id"], D(0)) + D(row["real"])
    return totals


async def test_repointing_unlinks_the_old_company_so_its_ids_never_match_the_new_ones(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
) -> None:
    catalog_group = f"{topic_prefix}inventory.catalog"
    documents_group = f"{topic_prefix}inventory.documents"
    # Company A: product 42 sold 3 times on invoice 1 (customer 5), credited once by note 6.
    await publish(
        kafka_bootstrap_servers, PENNYLANE_CATALOG, topic_prefix, _company("Lampe", "LA-1", "A")
    )
    await wait_handled(database_url, db_schema, catalog_group, 2)
    old_company_documents = [
        new_event(document(INVOICE, 1, [(42, "3")], customer=5), TENANT),
        new_event(document(CREDIT_NOTE, 6, [(42, "-1")], credited=1, minute=1), TENANT),
    ]
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, old_company_documents)
    await wait_handled(database_url, db_schema, documents_group, 2)
    [lamp] = await _get(api, "/products")
    assert lamp["pennylane_id"] == 42
    assert await _real_by_product(api) == {lamp["product_id"]: D(-3)}
    ledger_before = await _get(api, f"/products/{lamp['product_id']}/ledger")

    repointed = ConnectionRepointed(pennylane_company_id=2, previous_pennylane_company_id=1)
    await publish(
        kafka_bootstrap_servers, CONNECTION_EVENTS, topic_prefix, [new_event(repointed, TENANT)]
    )
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.connection-events", 1)

    # Unlinked, not removed: the product, its stock and ledger, the customer, order and return.
    [unlinked] = await _get(api, "/products")
    assert (unlinked["product_id"], unlinked["pennylane_id"]) == (lamp["product_id"], None)
    assert (unlinked["name"], unlinked["sku"]) == ("Lampe", "LA-1")
    [customer] = await _get(api, "/customers")
    assert (customer["name"], customer["pennylane_id"]) == ("A", None)
    assert await _get(api, f"/products/{lamp['product_id']}/ledger") == ledger_before
    [old_order] = await _get(api, "/orders")
    [old_return] = await _get(api, "/returns")

    # Company B numbers its records alike: product 42, customer 5, invoice 1, credit note 6.
    await publish(
        kafka_bootstrap_servers, PENNYLANE_CATALOG, topic_prefix, _company("Chaise", "CH-9", "B")
    )
    await wait_handled(database_url, db_schema, catalog_group, 4)
    new_company_documents = [
        new_event(document(INVOICE, 1, [(42, "2")], customer=5, minute=2), TENANT),
        new_event(document(CREDIT_NOTE, 6, [(42, "-2")], credited=1, minute=3), TENANT),
    ]
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, new_company_documents)
    await wait_handled(database_url, db_schema, documents_group, 4)

    products = {product["product_id"]: product for product in await _get(api, "/products")}
    assert len(products) == 2, "company B's product 42 is a new product"
    [chair_id] = set(products) - {lamp["product_id"]}
    assert (products[chair_id]["name"], products[chair_id]["pennylane_id"]) == ("Chaise", 42)
    assert products[lamp["product_id"]]["pennylane_id"] is None
    # The old product's stock did not move; invoice 1 of company B made its own order.
    assert await _real_by_product(api) == {lamp["product_id"]: D(-3), chair_id: D(-2)}
    assert await _get(api, f"/products/{lamp['product_id']}/ledger") == ledger_before
    orders = {order["order_id"]: order for order in await _get(api, "/orders")}
    assert len(orders) == 2
    assert orders[old_order["order_id"]] == old_order
    returns = {return_["return_id"]: return_ for return_ in await _get(api, "/returns")}
    assert len(returns) == 2, "company B's credit note 6 is a new return"
    [new_return] = [r for r in returns.values() if r["return_id"] != old_return["return_id"]]
    assert new_return["order_id"] != old_order["order_id"]
    customers = await _get(api, "/customers")
    assert sorted((c["name"], c["pennylane_id"]) for c in customers) == [("A", None), ("B", 5)]
