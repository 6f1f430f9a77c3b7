"""Changelogs: processed_at order, cursor paging, start_date rules and 4-week retention."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

API = "/api/external/v2"
PRODUCT = {"price_before_tax": "5", "vat_rate": "FR_200"}


async def _changes(client: httpx.AsyncClient, resource: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    response = await client.get(f"{API}/changelogs/{resource}", params=params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        if not body["has_more"]:
            return items
        response = await client.get(
            f"{API}/changelogs/{resource}",
            params={"cursor": body["next_cursor"], "limit": params.get("limit", "20")},
        )


async def _advance(client: httpx.AsyncClient, **delta: float) -> None:
    seconds = dt.timedelta(**delta).total_seconds()
    response = await client.post("/_sandbox/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200


async def test_events_come_oldest_first_with_every_operation(client: httpx.AsyncClient) -> None:
    ids = []
    for index in range(7):
        response = await client.post(f"{API}/products", json={"label": f"P{index}", **PRODUCT})
        ids.append(response.json()["id"])
        await _advance(client, seconds=1)
    await client.put(f"{API}/products/{ids[2]}", json={"label": "renamed"})
    events = await _changes(client, "products", limit="3")
    assert [(e["id"], e["operation"]) for e in events] == [
        *((product_id, "insert") for product_id in ids),
        (ids[2], "update"),
    ]
    processed = [e["processed_at"] for e in events]
    assert processed == sorted(processed)


async def test_a_deleted_draft_leaves_a_delete_event(
    client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    await client.post(f"/_sandbox/{tokens[0]}/seed/customer_invoices", json={"count": 0})
    customers = (await client.get(f"{API}/customers")).json()["items"]
    today = dt.datetime.now(dt.UTC).date().isoformat()
    draft = await client.post(
        f"{API}/customer_invoices",
        json={
            "date": today,
            "deadline": today,
            "customer_id": customers[0]["id"],
            "draft": True,
            "invoice_lines": [
                {
                    "label": "x",
                    "raw_currency_unit_price": "1",
                    "unit": "piece",
                    "vat_rate": "FR_200",
                    "quantity": 1,
                }
            ],
        },
    )
    await client.delete(f"{API}/customer_invoices/{draft.json()['id']}")
    events = await _changes(client, "customer_invoices")
    assert [e["operation"] for e in events] == ["insert", "delete"]


async def test_start_date_selects_from_that_moment_and_excludes_cursor(
    client: httpx.AsyncClient,
) -> None:
    await client.post(f"{API}/products", json={"label": "old", **PRODUCT})
    await _advance(client, hours=1)
    clock = (await client.get("/_sandbox/clock")).json()
    await client.post(f"{API}/products", json={"label": "new", **PRODUCT})
    recent = await _changes(client, "products", start_date=clock["now"])
    assert len(recent) == 1
    both = await client.get(
        f"{API}/changelogs/products", params={"start_date": clock["now"], "cursor": "abc"}
    )
    assert both.status_code == 400
    malformed = await client.get(f"{API}/changelogs/products", params={"start_date": "yesterday"})
    assert malformed.status_code == 400


async def test_retention_is_four_weeks(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/products", json={"label": "ancient", **PRODUCT})
    before = (await client.get("/_sandbox/clock")).json()["now"]
    await _advance(client, days=27)
    assert len(await _changes(client, "products")) == 1
    assert (
        await client.get(f"{API}/changelogs/products", params={"start_date": before})
    ).status_code == 200
    await _advance(client, days=2)
    await client.post(f"{API}/products", json={"label": "fresh", **PRODUCT})
    events = await _changes(client, "products")
    assert len(events) == 1
    too_old = await client.get(f"{API}/changelogs/products", params={"start_date": before})
    assert too_old.status_code == 422
    assert too_old.json()["status"] == 422


async def test_a_cursor_stays_valid_for_later_events(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/suppliers", json={"name": "A"})
    await client.post(f"{API}/suppliers", json={"name": "B"})
    first = (await client.get(f"{API}/changelogs/suppliers", params={"limit": "1"})).json()
    assert first["has_more"] is True
    await client.post(f"{API}/suppliers", json={"name": "C"})
    rest = (
        await client.get(
            f"{API}/changelogs/suppliers", params={"cursor": first["next_cursor"], "limit": "10"}
        )
    ).json()
    assert len(rest["items"]) == 2
    assert rest["next_cursor"] is None
