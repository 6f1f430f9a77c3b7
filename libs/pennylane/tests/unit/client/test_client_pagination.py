import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest
from stockpit_pennylane.client import ChangelogExpired, ChangelogResource, Filter, Unprocessable


async def test_pages_follow_cursor_and_resend_filter_and_sort(make_client, payloads) -> None:  # type: ignore[no-untyped-def]
    pages = {
        None: payloads.page([payloads.invoice(1), payloads.invoice(2)], "c2"),
        "c2": payloads.page([payloads.invoice(3)], None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    mocked = make_client(handler)
    invoices = [
        inv
        async for inv in mocked.client.iter_customer_invoices(
            filters=[Filter.eq("customer_id", 3), Filter.eq("draft", False)], sort="id", page_size=2
        )
    ]
    assert [i.id for i in invoices] == [1, 2, 3]
    assert invoices[0].currency_amount == Decimal("24.0")
    for request in mocked.requests:
        params = request.url.params
        assert json.loads(params["filter"]) == [
            {"field": "customer_id", "operator": "eq", "value": "3"},
            {"field": "draft", "operator": "eq", "value": "false"},
        ]
        assert params["sort"] == "id"
        assert params["limit"] == "2"
    assert "cursor" not in mocked.requests[0].url.params
    assert mocked.requests[1].url.params["cursor"] == "c2"


async def test_page_size_is_bounded_like_pennylane(make_client, payloads) -> None:  # type: ignore[no-untyped-def]
    mocked = make_client(lambda r: httpx.Response(200, json=payloads.page([], None)))
    with pytest.raises(ValueError, match="page_size"):
        async for _ in mocked.client.iter_products(page_size=101):
            pass
    assert mocked.requests == []


async def test_changelog_sends_start_date_first_then_cursor_only(make_client, payloads) -> None:  # type: ignore[no-untyped-def]
    pages = {
        None: payloads.page([payloads.changelog(1, "2026-05-04T10:00:00Z")], "next"),
        "next": payloads.page([payloads.changelog(2, "2026-05-04T11:00:00Z", "delete")], None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    mocked = make_client(handler)
    since = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    events = [
        e
        async for e in mocked.client.iter_changelog(
            ChangelogResource.CUSTOMER_INVOICES, since=since
        )
    ]
    assert [(e.id, e.operation) for e in events] == [(1, "update"), (2, "delete")]
    first, second = (r.url.params for r in mocked.requests)
    assert first["start_date"] == "2026-05-04T10:00:00Z"
    assert "cursor" not in first
    assert second["cursor"] == "next"
    assert "start_date" not in second
    assert mocked.requests[0].url.path.endswith("/changelogs/customer_invoices")


async def test_changelog_start_date_beyond_retention_signals_full_rescan(make_client) -> None:  # type: ignore[no-untyped-def]
    body = {"error": "start_date must be within the last 4 weeks", "status": 422}
    mocked = make_client(lambda r: httpx.Response(422, json=body))
    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ChangelogExpired) as caught:
        async for _ in mocked.client.iter_changelog(ChangelogResource.PRODUCTS, since=since):
            pass
    assert caught.value.start_date == since
    assert isinstance(caught.value, Unprocessable)
    assert len(mocked.requests) == 1


async def test_changelog_refuses_naive_watermarks(make_client, payloads) -> None:  # type: ignore[no-untyped-def]
    mocked = make_client(lambda r: httpx.Response(200, json=payloads.page([], None)))
    with pytest.raises(ValueError, match="timezone"):
        async for _ in mocked.client.iter_changelog(
            ChangelogResource.PRODUCTS,
            since=dt.datetime(2026, 5, 1),  # noqa: DTZ001
        ):
            pass


def _included(lines_by_invoice: dict[int, tuple[list[dict], bool]]) -> dict:  # type: ignore[type-arg]
    return {
        "invoice_lines": {
            str(inv): {
                "items": lines,
                "has_more": more,
                "next_url": f"https://x/customer_invoices/{inv}/invoice_lines?cursor=abc"
                if more
                else None,
            }
            for inv, (lines, more) in lines_by_invoice.items()
        }
    }


async def test_batch_fetch_uses_include_and_falls_back_only_for_long_invoices(  # type: ignore[no-untyped-def]
    make_client, payloads
) -> None:
    short = [payloads.line(100), payloads.line(101, product_id=None)]
    first_twenty = [payloads.line(200 + i) for i in range(20)]
    all_25 = [payloads.line(200 + i) for i in range(25)]

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/customer_invoices"):
            assert request.url.params["include"] == "invoice_lines"
            ids = json.loads(request.url.params["filter"])[0]["value"]
            assert ids == ["1", "2", "3"]
            body = payloads.page([payloads.invoice(1), payloads.invoice(2)], None)
            body["included"] = _included({1: (short, False), 2: (first_twenty, True)})
            return httpx.Response(200, json=body)
        assert path.endswith("/customer_invoices/2/invoice_lines")
        return httpx.Response(200, json=payloads.page(all_25, None))

    mocked = make_client(handler)
    result = await mocked.client.fetch_customer_invoices_with_lines([3, 2, 1, 2])
    by_id = {r.invoice.id: r for r in result}
    assert set(by_id) == {1, 2}
    assert [line.id for line in by_id[1].lines] == [100, 101]
    assert by_id[1].lines[1].product is None
    assert len(by_id[2].lines) == 25
    assert len(mocked.requests) == 2


async def test_batch_fetch_chunks_ids_by_page_size(make_client, payloads) -> None:  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        ids = [int(v) for v in json.loads(request.url.params["filter"])[0]["value"]]
        body = payloads.page([payloads.invoice(i) for i in ids], None)
        body["included"] = _included({i: ([payloads.line(i)], False) for i in ids})
        return httpx.Response(200, json=body)

    mocked = make_client(handler)
    result = await mocked.client.fetch_customer_invoices_with_lines(range(1, 251))
    assert len(result) == 250
    assert len(mocked.requests) == 3


async def test_missing_include_falls_back_to_lines_endpoint(make_client, payloads) -> None:  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/customer_invoices"):
            return httpx.Response(200, json=payloads.page([payloads.invoice(7)], None))
        return httpx.Response(200, json=payloads.page([payloads.line(70)], None))

    mocked = make_client(handler)
    result = [r async for r in mocked.client.iter_customer_invoices_with_lines()]
    assert [line.id for line in result[0].lines] == [70]
