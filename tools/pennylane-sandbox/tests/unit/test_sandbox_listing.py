"""Cursor pagination, `limit` bounds, `sort`, the JSON `filter` parameter and `include`."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

API = "/api/external/v2"


def _filter(*conditions: tuple[str, str, object]) -> str:
    return json.dumps([{"field": f, "operator": o, "value": v} for f, o, v in conditions])


async def _seed(client: httpx.AsyncClient, token: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/_sandbox/{token}/seed/customer_invoices", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _all_pages(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        response = await client.get(
            API + path, params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        assert (body["next_cursor"] is None) == (not body["has_more"])
        if not body["has_more"]:
            return items
        cursor = body["next_cursor"]


async def test_cursor_pages_cover_every_invoice_once_in_both_directions(
    client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    seeded = await _seed(client, tokens[0], count=95, seed=3)
    descending = await _all_pages(client, "/customer_invoices", {"limit": "10"})
    ids = [item["id"] for item in descending]
    assert ids == list(range(seeded["last_id"], seeded["first_id"] - 1, -1))
    ascending = await _all_pages(client, "/customer_invoices", {"limit": "7", "sort": "id"})
    assert [item["id"] for item in ascending] == sorted(ids)
    by_date = await _all_pages(client, "/customer_invoices", {"limit": "9", "sort": "-date"})
    keys = [(item["date"], item["id"]) for item in by_date]
    assert keys == sorted(keys, reverse=True)
    assert len(by_date) == 95


async def test_default_page_is_twenty_newest_first(
    client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    await _seed(client, tokens[0], count=25)
    body = (await client.get(f"{API}/customer_invoices")).json()
    assert len(body["items"]) == 20
    assert body["has_more"] is True
    assert body["items"][0]["id"] > body["items"][-1]["id"]


@pytest.mark.parametrize(
    ("path", "limit", "status"),
    [
        ("/customer_invoices", "0", 400),
        ("/customer_invoices", "101", 400),
        ("/customer_invoices", "abc", 400),
        ("/customer_invoices", "100", 200),
        ("/products", "101", 400),
        ("/changelogs/customer_invoices", "1000", 200),
        ("/changelogs/customer_invoices", "1001", 400),
        ("/ledger_accounts", "1000", 200),
        ("/ledger_accounts", "1001", 400),
    ],
)
async def test_limit_out_of_bounds_is_a_400(
    client: httpx.AsyncClient, path: str, limit: str, status: int
) -> None:
    response = await client.get(API + path, params={"limit": limit})
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["field"] == "limit"


async def test_bad_cursors_and_sorts_are_400s(
    client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    await _seed(client, tokens[0], count=5)
    first = (await client.get(f"{API}/customer_invoices", params={"limit": "2"})).json()
    assert (
        await client.get(f"{API}/customer_invoices", params={"cursor": "garbage!"})
    ).status_code == 400
    other_sort = await client.get(
        f"{API}/customer_invoices", params={"cursor": first["next_cursor"], "sort": "id"}
    )
    assert other_sort.status_code == 400
    assert (await client.get(f"{API}/products", params={"sort": "label"})).status_code == 400


@pytest.mark.parametrize(
    "raw_filter",
    [
        "not json",
        '{"field": "id", "operator": "eq", "value": 1}',
        '[{"field": "id", "operator": "eq"}]',
        _filter(("updated_at", "gteq", "2024-01-01")),
        _filter(("external_reference", "in", ["a"])),
        _filter(("draft", "not_eq", "true")),
        _filter(("id", "start_with", "1")),
        _filter(("id", "eq", "abc")),
        _filter(("date", "gteq", "2024-13-45")),
        _filter(("draft", "eq", "maybe")),
    ],
)
async def test_invalid_filters_are_400s(client: httpx.AsyncClient, raw_filter: str) -> None:
    response = await client.get(f"{API}/customer_invoices", params={"filter": raw_filter})
    assert response.status_code == 400, response.text
    assert response.json()["status"] == 400


async def test_invoice_filters_select_the_right_records(
    client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    seeded = await _seed(
        client, tokens[0], count=60, seed=11, draft_share=0.3, credit_note_share=0.2
    )
    everything = await _all_pages(client, "/customer_invoices", {"limit": "100"})

    async def select(*conditions: tuple[str, str, object]) -> list[dict[str, Any]]:
        return await _all_pages(
            client, "/customer_invoices", {"limit": "13", "filter": _filter(*conditions)}
        )

    drafts = await select(("draft", "eq", "true"))
    assert {i["id"] for i in drafts} == {i["id"] for i in everything if i["draft"]}
    assert 0 < len(drafts) < 60
    credit_notes = await select(("credit_note", "eq", True), ("draft", "eq", False))
    expected_credit = {i["id"] for i in everything if not i["draft"] and i["amount"][0] == "-"}
    assert {i["id"] for i in credit_notes} == expected_credit
    assert expected_credit
    wanted = [seeded["first_id"], seeded["first_id"] + 7, 999_999_999]
    by_ids = await select(("id", "in", wanted))
    assert sorted(i["id"] for i in by_ids) == wanted[:2]
    by_ids_text = await select(("id", "in", ",".join(map(str, wanted))))
    assert sorted(i["id"] for i in by_ids_text) == wanted[:2]
    reference = everything[4]["external_reference"]
    assert [i["id"] for i in await select(("external_reference", "eq", reference))] == [
        everything[4]["id"]
    ]
    middle = sorted(i["date"] for i in everything)[30]
    after = await select(("date", "gteq", middle))
    assert {i["id"] for i in after} == {i["id"] for i in everything if i["date"] >= middle}


async def test_ledger_accounts_number_filter_finds_the_french_chart(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        f"{API}/ledger_accounts",
        params={"filter": _filter(("number", "start_with", "70")), "limit": "1000"},
    )
    numbers = {item["number"] for item in response.json()["items"]}
    assert {"706000", "707000"} <= numbers
    assert all(number.startswith("70") for number in numbers)
    exact = await client.get(
        f"{API}/ledger_accounts", params={"filter": _filter(("number", "in", ["401000", "411000"]))}
    )
    assert {item["number"] for item in exact.json()["items"]} == {"401000", "411000"}


async def test_include_invoice_lines_embeds_at_most_twenty_lines(
    client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    await _seed(client, tokens[0], count=30, seed=5, min_lines=15, max_lines=30)
    body = (
        await client.get(
            f"{API}/customer_invoices", params={"include": "invoice_lines", "limit": "30"}
        )
    ).json()
    included = body["included"]["invoice_lines"]
    assert set(included) == {str(item["id"]) for item in body["items"]}
    long_ones = [key for key, lines in included.items() if lines["has_more"]]
    assert long_ones
    for key in long_ones:
        embedded = included[key]
        assert len(embedded["items"]) == 20
        rest = await client.get(embedded["next_url"])
        assert rest.status_code == 200, rest.text
        all_lines = await _all_pages(
            client, f"/customer_invoices/{key}/invoice_lines", {"sort": "id", "limit": "100"}
        )
        assert [line["id"] for line in embedded["items"] + rest.json()["items"]] == [
            line["id"] for line in all_lines
        ]
    assert (
        await client.get(f"{API}/customer_invoices", params={"include": "payments"})
    ).status_code == 400


@pytest.mark.parametrize("path", ["/customer_invoices", "/products", "/customers"])
async def test_a_filter_serialised_as_form_brackets_is_refused_not_ignored(
    client: httpx.AsyncClient, tokens: tuple[str, str], path: str
) -> None:
    await _seed(client, tokens[0], count=3, seed=5)
    response = await client.get(
        API + path,
        params={
            "filter[0][field]": "external_reference",
            "filter[0][operator]": "eq",
            "filter[0][value]": "nothing-has-this",
        },
    )
    assert response.status_code == 400, response.text
    assert "JSON array" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/products/1"), ("PATCH", "/customer_invoices/1"), ("POST", "/me")],
)
async def test_a_wrong_method_on_an_existing_path_is_not_found(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, API + path)
    assert response.status_code == 404, response.text
    assert response.json()["status"] == 404
