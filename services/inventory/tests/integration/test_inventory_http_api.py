"""The HTTP API on real PostgreSQL and Kafka: Stockpit-side flows, outbound requests and
results, 4xx with reasons, and concurrent updates of one stock row."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest
from stockpit_contracts import Envelope, Payload, new_event, parse_event
from stockpit_contracts.payloads.catalog import ProductUpserted
from stockpit_contracts.payloads.documents import DocumentKind
from stockpit_contracts.payloads.inventory import ProblemReported, TenantSettingsChanged
from stockpit_contracts.payloads.outbound import (
    CustomerWriteRequested,
    PennylaneIdAssigned,
    PennylaneWriteFailed,
    ProductChangeRequested,
    ReceiptSendRequested,
)
from stockpit_contracts.topics import (
    INVENTORY_PROBLEMS,
    INVENTORY_SETTINGS,
    OUTBOUND_REQUESTS,
    OUTBOUND_RESULTS,
    PENNYLANE_CATALOG,
    PENNYLANE_DOCUMENTS,
)
from stockpit_testing.fixtures import read_topic
from stockpit_testing.inventory import document, publish, stock_by_pennylane_id, wait_handled

pytestmark = pytest.mark.integration

TENANT = "shop"
D = Decimal


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _level(api: httpx.AsyncClient, product_id: str, location_id: str) -> dict[str, D]:
    rows = await _ok(
        await api.get(
            f"/tenants/{TENANT}/stock",
            params={"product_id": product_id, "location_id": location_id},
        )
    )
    if not rows:
        return {"real": D(0), "reserved": D(0), "available": D(0), "incoming": D(0)}
    [row] = rows
    return {k: D(row[k]) for k in ("real", "reserved", "available", "incoming")}


async def test_stockpit_flows_over_http(api: httpx.AsyncClient) -> None:
    base = f"/tenants/{TENANT}"
    defaults = await _ok(await api.get(f"{base}/settings"))
    assert defaults["default_location_id"] is None
    assert defaults["sync_interval_seconds"] == 1800
    assert await _ok(await api.get(f"{base}/locations")) == [], "a read creates nothing"
    settings = await _ok(await api.put(f"{base}/settings", json={}))
    [principal] = await _ok(await api.get(f"{base}/locations"))
    assert principal["name"] == "Principal"
    assert settings["default_location_id"] == principal["location_id"]
    assert settings["delivery_notes_update_real_stock"] is False
    van = await _ok(await api.post(f"{base}/locations", json={"name": "Camionnette"}), 201)
    home, away = principal["location_id"], van["location_id"]

    chair = await _ok(
        await api.post(f"{base}/products", json={"name": "Chaise", "sku": "CH-1"}), 201
    )
    pid = chair["product_id"]
    renamed = await _ok(await api.patch(f"{base}/products/{pid}", json={"name": "Chaise pliante"}))
    assert renamed["name"] == "Chaise pliante"

    # Purchase 10, receive 4 at the van: incoming 6 at home, real 4 at the van.
    supplier = await _ok(await api.post(f"{base}/suppliers", json={"name": "Durand"}), 201)
    purchase = await _ok(
        await api.post(
            f"{base}/purchases",
            json={
                "supplier_id": supplier["supplier_id"],
                "lines": [{"product_id": pid, "quantity": "10", "unit_price_before_tax": "12.5"}],
            },
        ),
        201,
    )
    assert (await _level(api, pid, home))["incoming"] == D(10)
    purchase = await _ok(
        await api.post(
            f"{base}/purchases/{purchase['purchase_id']}/receipts",
            json={
                "lines": [{"product_id": pid, "quantity": "4"}],
                "received_on": "2026-11-02",
                "location_id": away,
            },
        ),
        201,
    )
    assert (await _level(api, pid, home))["incoming"] == D(6)
    assert (await _level(api, pid, away))["real"] == D(4)
    receipt_id = purchase["receipts"][0]["receipt_id"]
    sent = await _ok(
        await api.post(f"{base}/purchases/{purchase['purchase_id']}/receipts/{receipt_id}/send"),
        202,
    )
    assert sent["receipts"][0]["send_status"] == "requested"

    # Transfer 3 from the van home, then an order (mode off: real −= q at home).
    await _ok(
        await api.post(
            f"{base}/transfers",
            json={
                "product_id": pid,
                "from_location_id": away,
                "to_location_id": home,
                "quantity": "3",
            },
        ),
        201,
    )
    customer = await _ok(
        await api.post(f"{base}/customers", json={"name": "Café du Port", "emails": ["a@b.fr"]}),
        201,
    )
    order = await _ok(
        await api.post(
            f"{base}/orders",
            json={
                "lines": [{"product_id": pid, "quantity": "2"}],
                "customer_id": customer["customer_id"],
            },
        ),
        201,
    )
    assert (await _level(api, pid, home))["real"] == D(1)
    # Mode on from now: a new order reserves; its delivery note takes real stock.
    await _ok(await api.put(f"{base}/settings", json={"delivery_notes_update_real_stock": True}))
    reserved_order = await _ok(
        await api.post(f"{base}/orders", json={"lines": [{"product_id": pid, "quantity": "3"}]}),
        201,
    )
    assert await _level(api, pid, home) == {
        "real": D(1),
        "reserved": D(3),
        "available": D(-2),
        "incoming": D(6),
    }
    delivered = await _ok(
        await api.post(
            f"{base}/orders/{reserved_order['order_id']}/delivery-notes",
            json={"lines": [{"product_id": pid, "quantity": "1"}]},
        ),
        201,
    )
    assert delivered["delivery_state"] == "partially_delivered"
    assert await _level(api, pid, home) == {
        "real": D(0),
        "reserved": D(2),
        "available": D(-2),
        "incoming": D(6),
    }
    archived = await _ok(await api.post(f"{base}/orders/{reserved_order['order_id']}/archive"))
    assert archived["status"] == "archived"
    assert (await _level(api, pid, home))["reserved"] == D(0)
    # The first order keeps its own mode: cancelling it puts its 2 units back.
    cancelled = await _ok(await api.post(f"{base}/orders/{order['order_id']}/cancel"))
    assert cancelled["mode"] == "deduct_on_order"
    assert (await _level(api, pid, home))["real"] == D(2)

    # An inventory count and a plain adjustment.
    await _ok(
        await api.post(
            f"{base}/adjustments",
            json={"product_id": pid, "location_id": home, "counted": "7", "reason": "inventaire"},
        ),
        201,
    )
    assert (await _level(api, pid, home))["real"] == D(7)
    ledger = await _ok(await api.get(f"{base}/products/{pid}/ledger"))  # newest first
    kinds = [entry["cause_kind"] for entry in reversed(ledger)]
    assert kinds[:3] == ["purchase", "receipt", "receipt"]
    assert "transfer" in kinds
    assert "delivery_note" in kinds
    assert "cancel" in kinds
    assert ledger[0]["note"] == "inventaire"
    assert ledger[0]["delta_real"] == "5.000000"
    # The whole ledger is reachable page by page, newest first, each entry once.
    walked: list[Any] = []
    url: str | None = f"{base}/products/{pid}/ledger?limit=2"
    while url is not None:
        page = await api.get(url)
        walked += await _ok(page)
        url = page.links.get("next", {}).get("url")
    assert walked == ledger
    assert await _ok(await api.get(f"{base}/reconciliation")) == {
        "balanced": True,
        "mismatches": [],
    }

    # Clear 4xx with the reason.
    too_much = await api.post(
        f"{base}/orders/{reserved_order['order_id']}/delivery-notes",
        json={"lines": [{"product_id": pid, "quantity": "1"}]},
    )
    assert too_much.status_code == 422
    assert "open order" in too_much.json()["detail"]
    unknown = await api.post(
        f"{base}/orders", json={"lines": [{"product_id": away, "quantity": "1"}]}
    )
    assert unknown.status_code == 404
    assert "not found" in unknown.json()["detail"]
    malformed = await api.post(f"{base}/adjustments", json={"product_id": pid, "reason": ""})
    assert malformed.status_code == 422
    neither = await api.post(f"{base}/adjustments", json={"product_id": pid, "reason": "x"})
    assert neither.status_code == 422
    assert "delta or a counted" in neither.json()["detail"]
    default_off = await api.patch(f"{base}/locations/{home}", json={"active": False})
    assert default_off.status_code == 422
    assert "default location" in default_off.json()["detail"]
    other_tenant = await api.get(f"/tenants/someone-else/orders/{order['order_id']}")
    assert other_tenant.status_code == 404
    deleted = await _ok(await api.delete(f"{base}/products/{pid}"))
    assert deleted["deleted"] is True
    assert await _ok(await api.get(f"{base}/products")) == []
    openapi = await _ok(await api.get("/openapi.json"))
    assert "/tenants/{tenant_id}/orders/{order_id}/delivery-notes" in openapi["paths"]


async def test_outbound_requests_only_for_stockpit_changes_and_results_are_shown(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
) -> None:
    base = f"/tenants/{TENANT}"
    # A product from Pennylane: imported, no echo back.
    upsert = ProductUpserted(
        pennylane_id=55,
        label="Lampe",
        reference="LA-1",
        updated_at=document(DocumentKind.INVOICE, 1, []).updated_at,
    )
    await publish(
        kafka_bootstrap_servers, PENNYLANE_CATALOG, topic_prefix, [new_event(upsert, TENANT)]
    )
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.catalog", 1)
    [lamp] = await _ok(await api.get(f"{base}/products"))
    assert (lamp["name"], lamp["sku"], lamp["pennylane_id"]) == ("Lampe", "LA-1", 55)
    # Renamed in Stockpit: Pennylane should follow.
    await _ok(await api.patch(f"{base}/products/{lamp['product_id']}", json={"name": "Lampe LED"}))
    # A customer of an order made in Stockpit is created in Pennylane.
    customer = await _ok(await api.post(f"{base}/customers", json={"name": "Hôtel"}), 201)
    await _ok(
        await api.post(
            f"{base}/orders",
            json={
                "lines": [{"product_id": lamp["product_id"], "quantity": "1"}],
                "customer_id": customer["customer_id"],
            },
        ),
        201,
    )
    supplier = await _ok(await api.post(f"{base}/suppliers", json={"name": "Durand"}), 201)
    purchase = await _ok(
        await api.post(
            f"{base}/purchases",
            json={
                "supplier_id": supplier["supplier_id"],
                "lines": [
                    {
                        "product_id": lamp["product_id"],
                        "quantity": "2",
                        "unit_price_before_tax": "9.90",
                    }
                ],
            },
        ),
        201,
    )
    purchase = await _ok(
        await api.post(
            f"{base}/purchases/{purchase['purchase_id']}/receipts",
            json={
                "lines": [{"product_id": lamp["product_id"], "quantity": "2"}],
                "received_on": "2026-11-03",
            },
        ),
        201,
    )
    receipt_id = purchase["receipts"][0]["receipt_id"]
    send = f"{base}/purchases/{purchase['purchase_id']}/receipts/{receipt_id}/send"
    await _ok(await api.post(send), 202)
    await _ok(await api.post(send), 202)  # asked again while requested: no second request

    records = await read_topic(
        kafka_bootstrap_servers, OUTBOUND_REQUESTS.name(topic_prefix), expect=3
    )
    requests = [parse_event(record.value).payload for record in records]
    assert len(requests) == 3
    [change] = [r for r in requests if isinstance(r, ProductChangeRequested)]
    assert (change.pennylane_product_id, change.label) == (55, "Lampe LED")
    [created] = [r for r in requests if isinstance(r, CustomerWriteRequested)]
    assert created.pennylane_customer_id is None
    assert created.name == "Hôtel"
    [receipt] = [r for r in requests if isinstance(r, ReceiptSendRequested)]
    assert receipt.receipt_id == receipt_id
    assert receipt.lines[0].unit_price_before_tax == D("9.90")
    keys = sorted(record.key for record in records)
    assert f"{TENANT}:receipt:{receipt_id}".encode() in keys

    # Outbound results: the customer gets its Pennylane id; the receipt fails, then succeeds.
    results: list[Envelope[Payload]] = [
        new_event(
            PennylaneIdAssigned(
                entity_kind="customer", entity_id=customer["customer_id"], pennylane_id=901
            ),
            TENANT,
        ),
        new_event(
            PennylaneWriteFailed(
                entity_kind="receipt",
                entity_id=receipt_id,
                reason="supplier unknown",
                retryable=False,
            ),
            TENANT,
        ),
    ]
    await publish(kafka_bootstrap_servers, OUTBOUND_RESULTS, topic_prefix, results)
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.outbound-results", 2)
    [linked] = await _ok(await api.get(f"{base}/customers"))
    assert linked["pennylane_id"] == 901
    [failed] = await _ok(await api.get(f"{base}/writes", params={"failed_only": True}))
    assert (failed["entity_id"], failed["reason"]) == (receipt_id, "supplier unknown")
    [shown] = await _ok(await api.get(f"{base}/purchases"))
    assert shown["receipts"][0]["send_status"] == "failed"
    assert shown["receipts"][0]["send_failure"] == "supplier unknown"
    # After a failure, "send to Pennylane" asks again.
    await _ok(await api.post(send), 202)
    again = await read_topic(
        kafka_bootstrap_servers, OUTBOUND_REQUESTS.name(topic_prefix), expect=4
    )
    assert len(again) == 4
    done = new_event(
        PennylaneIdAssigned(entity_kind="receipt", entity_id=receipt_id, pennylane_id=777), TENANT
    )
    await publish(kafka_bootstrap_servers, OUTBOUND_RESULTS, topic_prefix, [done])
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.outbound-results", 3)
    [shown] = await _ok(await api.get(f"{base}/purchases"))
    assert (shown["receipts"][0]["send_status"], shown["receipts"][0]["pennylane_invoice_id"]) == (
        "sent",
        777,
    )
    refused = await api.post(send)
    assert refused.status_code == 422
    assert "already in Pennylane" in refused.json()["detail"]


async def test_fifty_concurrent_adjustments_of_one_stock_row_all_count(
    api: httpx.AsyncClient,
) -> None:
    base = f"/tenants/{TENANT}"
    product = await _ok(await api.post(f"{base}/products", json={"name": "Vis"}), 201)
    pid = product["product_id"]
    await _ok(await api.put(f"{base}/settings", json={}))
    [home] = await _ok(await api.get(f"{base}/locations"))
    other = await _ok(await api.post(f"{base}/locations", json={"name": "Atelier"}), 201)

    async def adjust(index: int) -> None:
        await _ok(
            await api.post(
                f"{base}/adjustments",
                json={"product_id": pid, "delta": f"{index}.5", "reason": f"lot {index}"},
            ),
            201,
        )

    async def move(index: int) -> None:
        await _ok(
            await api.post(
                f"{base}/transfers",
                json={
                    "product_id": pid,
                    "from_location_id": home["location_id"],
                    "to_location_id": other["location_id"],
                    "quantity": "1",
                },
            ),
            201,
        )

    await asyncio.gather(*(adjust(i) for i in range(1, 51)), *(move(i) for i in range(10)))
    expected_adjusted = sum(D(f"{i}.5") for i in range(1, 51))
    assert (await _level(api, pid, home["location_id"]))["real"] == expected_adjusted - 10
    assert (await _level(api, pid, other["location_id"]))["real"] == D(10)
    assert len(await _ok(await api.get(f"{base}/products/{pid}/ledger"))) == 50 + 2 * 10
    assert await _ok(await api.get(f"{base}/reconciliation")) == {
        "balanced": True,
        "mismatches": [],
    }


async def test_the_sync_interval_is_checked_and_sent_to_the_poller(
    api: httpx.AsyncClient, kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    """Rule 16: the interval's one home is here; each change goes out on the settings topic.
    Absurd figures are a 422 with a reason, never a 500."""
    base = f"/tenants/{TENANT}/settings"
    for bad in (1e20, 4, 86_401, 2.5, "soon", -30):
        response = await api.put(base, json={"sync_interval_seconds": bad})
        assert response.status_code == 422, (bad, response.text)
        assert "sync_interval_seconds" in response.text
    assert (await _ok(await api.get(base)))["sync_interval_seconds"] == 30 * 60
    assert (await _ok(await api.put(base, json={"sync_interval_seconds": 5})))[
        "sync_interval_seconds"
    ] == 5
    await _ok(await api.put(base, json={"sync_interval_seconds": 600}))
    records = await read_topic(
        kafka_bootstrap_servers, INVENTORY_SETTINGS.name(topic_prefix), expect=2
    )
    events = [parse_event(record.value) for record in records]
    assert [e.payload for e in events] == [
        TenantSettingsChanged(sync_interval_s=5),
        TenantSettingsChanged(sync_interval_s=600),
    ]
    assert {e.tenant_id for e in events} == {TENANT}
    assert {record.key for record in records} == {TENANT.encode()}


async def test_a_likely_duplicate_is_flagged_then_merged_over_http(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
) -> None:
    """Rule 15: a product recreated in Pennylane (new id, same SKU) is flagged in its API
    representation and on the problems topic; the merge moves its stock through "merge"
    entries, documents naming its old id then move the original, and it is deactivated."""
    base = f"/tenants/{TENANT}"
    at = document(DocumentKind.INVOICE, 1, []).updated_at
    original_upsert = ProductUpserted(
        pennylane_id=100, label="Chaise", reference="CH-1", updated_at=at
    )
    duplicate_upsert = ProductUpserted(
        pennylane_id=200, label="Chaise pliante", reference="CH-1", updated_at=at
    )
    await publish(
        kafka_bootstrap_servers,
        PENNYLANE_CATALOG,
        topic_prefix,
        [new_event(original_upsert, TENANT), new_event(duplicate_upsert, TENANT)],
    )
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.catalog", 2)
    products = {p["pennylane_id"]: p for p in await _ok(await api.get(f"{base}/products"))}
    original, duplicate = products[100], products[200]
    assert original["likely_duplicate_of"] is None
    assert duplicate["likely_duplicate_of"] == original["product_id"]
    records = await read_topic(
        kafka_bootstrap_servers, INVENTORY_PROBLEMS.name(topic_prefix), expect=1
    )
    [problem] = [parse_event(record.value) for record in records]
    assert isinstance(problem.payload, ProblemReported)
    assert problem.payload.kind == "conflict"
    assert problem.payload.reason.startswith("likely_duplicate:")
    assert problem.payload.subject_id == duplicate["product_id"]

    # Stock on both, at the default location and (for the duplicate) at a second one.
    invoices = [
        new_event(document(DocumentKind.INVOICE, 10, [(100, "2")]), TENANT),
        new_event(document(DocumentKind.INVOICE, 11, [(200, "5")]), TENANT),
    ]
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, invoices)
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.documents", 2)
    van = await _ok(await api.post(f"{base}/locations", json={"name": "Camionnette"}), 201)
    await _ok(
        await api.post(
            f"{base}/adjustments",
            json={
                "product_id": duplicate["product_id"],
                "location_id": van["location_id"],
                "delta": "3",
                "reason": "counted",
            },
        ),
        201,
    )
    assert await stock_by_pennylane_id(api, TENANT) == {
        100: (D(-2), D(0), D(0)),
        200: (D(-2), D(0), D(0)),
    }

    url = f"{base}/products/{duplicate['product_id']}/merge-into/{original['product_id']}"
    merged = await _ok(await api.post(url))
    assert merged["duplicate"]["merged_into"] == original["product_id"]
    assert merged["duplicate"]["active"] is False
    assert merged["original"]["pennylane_id"] == 100
    levels = await _ok(
        await api.get(f"{base}/stock", params={"product_id": original["product_id"]})
    )
    assert {row["location_id"]: D(row["real"]) for row in levels} == {
        (await _ok(await api.get(f"{base}/settings")))["default_location_id"]: D(-7),
        van["location_id"]: D(3),
    }
    ledger = await _ok(await api.get(f"{base}/products/{original['product_id']}/ledger"))
    assert sum(1 for entry in ledger if entry["cause_kind"] == "merge") == 2
    # Documents naming the duplicate's Pennylane id move the original now; nothing counts twice.
    later = [
        new_event(document(DocumentKind.INVOICE, 12, [(200, "1")]), TENANT),
        new_event(document(DocumentKind.INVOICE, 11, [(200, "5")], minute=5), TENANT),
    ]
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, later)
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.documents", 4)
    assert await stock_by_pennylane_id(api, TENANT) == {100: (D(-5), D(0), D(0))}
    assert (await _ok(await api.get(f"{base}/reconciliation")))["balanced"] is True

    again = await api.post(url)
    assert again.status_code == 422
    assert "already merged" in again.json()["detail"]
    unknown = await api.post(
        f"{base}/products/{duplicate['product_id']}/merge-into/{van['location_id']}"
    )
    assert unknown.status_code == 404


async def test_input_beyond_its_bounds_is_refused_with_a_4xx_never_a_500(
    api: httpx.AsyncClient,
) -> None:
    base = f"/tenants/{TENANT}"
    refusals = [
        await api.put(f"{base}/settings", json={"sync_interval_seconds": 1e20}),
        await api.put(f"{base}/settings", json={"sync_interval_seconds": 2}),
        await api.get(f"{base}/products", params={"limit": -1}),
        await api.get(f"{base}/stock", params={"limit": 100_000}),
        await api.get(f"{base}/orders", params={"status": "anything"}),
        await api.get(f"{base}/products", params={"cursor": "bm90IGEgY3Vyc29y"}),
        await api.post(f"{base}/products", json={"name": "x" * 256}),
        await api.post(f"{base}/products", json={"name": "nul\u0000byte"}),
        await api.post(f"{base}/customers", json={"name": "A", "emails": ["a" * 250 + "@b.fr"]}),
        await api.post(f"{base}/customers", json={"name": "A", "emails": ["not-an-address"]}),
    ]
    assert [r.status_code for r in refusals] == [422] * len(refusals), [r.text for r in refusals]
    too_big = await api.post(f"{base}/products", content=b'{"name": "' + b"x" * 1_400_000 + b'"}')
    assert too_big.status_code == 413
    assert await _ok(await api.get(f"{base}/products")) == [], "nothing refused was created"


async def test_every_list_is_paged_by_cursor_and_reachable_whole(api: httpx.AsyncClient) -> None:
    base = f"/tenants/{TENANT}"
    names = [f"Produit {n:02}" for n in range(7)]
    for name in reversed(names):
        await _ok(await api.post(f"{base}/products", json={"name": name}), 201)
    first = await api.get(f"{base}/products", params={"limit": 3})
    assert [p["name"] for p in await _ok(first)] == names[:3]
    walked: list[str] = []
    url: str | None = first.links["next"]["url"]
    while url:
        page = await api.get(url)
        walked += [p["name"] for p in await _ok(page)]
        url = page.links.get("next", {}).get("url")
    assert walked == names[3:], "every product once, in order, over the pages"
