import logging
import traceback
from decimal import Decimal

import httpx
import pytest
from stockpit_pennylane.client import (
    AmbiguousWriteError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PennylaneError,
    RateLimited,
    RequestRecord,
    RetryPolicy,
    ServerError,
    TransportError,
    Unauthorized,
    UnexpectedStatus,
    Unprocessable,
)
from stockpit_pennylane.client.bodies import ProductCreate


def _sequence(*responses: httpx.Response | Exception):  # type: ignore[no-untyped-def]
    remaining = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def _product_json() -> dict[str, object]:
    return {
        "id": 5,
        "label": "Chair",
        "description": "",
        "external_reference": "p-5",
        "price_before_tax": "10.50",
        "vat_rate": "FR_200",
        "price": "12.60",
        "unit": "piece",
        "currency": "EUR",
        "reference": "SKU-5",
        "ledger_account": {"id": 9},
        "archived_at": None,
        "created_at": "2026-05-04T10:00:00Z",
        "updated_at": "2026-05-04T10:00:00Z",
    }


ME: dict[str, object] = {
    "user": None,
    "company": {"id": 1, "name": "Acme", "reg_no": "sandbox-1"},
    "scopes": [],
}
NEW_PRODUCT = ProductCreate(label="Chair", price_before_tax=Decimal("10.5"), vat_rate="FR_200")


async def test_sends_auth_and_2026_headers(make_client) -> None:  # type: ignore[no-untyped-def]
    mocked = make_client(_sequence(httpx.Response(200, json=ME)))
    me = await mocked.client.get_me()
    assert me.company.reg_no == "sandbox-1"
    sent = mocked.requests[0]
    assert sent.headers["authorization"] == f"Bearer {mocked.token}"
    assert sent.headers["x-use-2026-api-changes"] == "true"
    assert sent.url.path == "/api/external/v2/me"


@pytest.mark.parametrize("status", [500, 503])
async def test_reads_retry_server_errors_then_succeed(make_client, status: int) -> None:  # type: ignore[no-untyped-def]
    mocked = make_client(
        _sequence(httpx.Response(status), httpx.Response(status), httpx.Response(200, json=ME))
    )
    await mocked.client.get_me()
    assert len(mocked.requests) == 3
    assert mocked.client.metrics.requests == 3
    assert mocked.client.metrics.retries == 2


async def test_reads_retry_timeouts_and_connection_errors(make_client) -> None:  # type: ignore[no-untyped-def]
    mocked = make_client(
        _sequence(
            httpx.ReadTimeout("slow"),
            httpx.ConnectError("refused"),
            httpx.RemoteProtocolError("dropped"),
            httpx.Response(200, json=ME),
        )
    )
    await mocked.client.get_me()
    assert len(mocked.requests) == 4


async def test_retries_are_bounded_and_end_in_typed_errors(make_client) -> None:  # type: ignore[no-untyped-def]
    mocked = make_client(_sequence(httpx.Response(503, json={"error": "down", "status": 503})))
    with pytest.raises(ServerError) as caught:
        await mocked.client.get_me()
    assert caught.value.status == 503
    assert caught.value.message == "down"
    assert len(mocked.requests) == 4  # FAST_RETRIES.max_attempts

    mocked = make_client(_sequence(httpx.ReadTimeout("slow")))
    with pytest.raises(TransportError, match="ReadTimeout"):
        await mocked.client.get_me()
    assert len(mocked.requests) == 4


async def test_429_waits_retry_after_and_is_counted(make_client) -> None:  # type: ignore[no-untyped-def]
    limited = httpx.Response(
        429,
        text="Rate limit exceeded. Please retry in 0 seconds.",
        headers={"retry-after": "0", "ratelimit-remaining": "0", "ratelimit-limit": "25"},
    )
    mocked = make_client(_sequence(limited, limited, httpx.Response(200, json=ME)))
    await mocked.client.get_me()
    assert mocked.client.metrics.rate_limited == 2
    assert mocked.client.metrics.requests == 3


async def test_429_gives_up_after_bounded_waits(make_client) -> None:  # type: ignore[no-untyped-def]
    limited = httpx.Response(429, text="Rate limit exceeded.", headers={"retry-after": "0"})
    mocked = make_client(_sequence(limited), retry_policy=RetryPolicy(max_rate_limited_waits=2))
    with pytest.raises(RateLimited) as caught:
        await mocked.client.get_me()
    assert caught.value.retry_after == 0
    assert caught.value.message == "Rate limit exceeded."
    assert len(mocked.requests) == 3


@pytest.mark.parametrize(
    ("status", "body", "error", "message", "code"),
    [
        (
            400,
            {"message": "bad filter", "code": "ValidateError", "field": "filter"},
            BadRequest,
            "bad filter",
            "ValidateError",
        ),
        (
            401,
            {"error": "The access token is invalid", "status": 401},
            Unauthorized,
            "The access token is invalid",
            None,
        ),
        (
            403,
            {"error": 'Access requires scope "products:all"', "status": 403},
            Forbidden,
            'Access requires scope "products:all"',
            None,
        ),
        (404, {"error": "Not Found", "status": 404}, NotFound, "Not Found", None),
        (409, {"status": 409, "error": "already exists"}, Conflict, "already exists", None),
        (
            422,
            {"error": "unprocessable_entity", "message": "VAT mismatch", "details": {"a": 1}},
            Unprocessable,
            "VAT mismatch",
            "unprocessable_entity",
        ),
        (405, {"weird": True}, UnexpectedStatus, '{"weird": true}', None),
    ],
)
async def test_client_errors_map_to_types_and_are_never_retried(  # type: ignore[no-untyped-def]
    make_client, status, body, error, message, code
) -> None:
    mocked = make_client(_sequence(httpx.Response(status, json=body)))
    with pytest.raises(error) as caught:
        await mocked.client.get_product(5)
    assert caught.value.status == status
    assert caught.value.message == message
    assert caught.value.code == code
    assert caught.value.path == "products/5"
    assert len(mocked.requests) == 1


async def test_post_is_not_resent_after_an_ambiguous_failure(make_client) -> None:  # type: ignore[no-untyped-def]
    for failure in (httpx.ReadTimeout("slow"), httpx.Response(500), httpx.Response(503)):
        mocked = make_client(_sequence(failure, httpx.Response(201, json=_product_json())))
        with pytest.raises(AmbiguousWriteError):
            await mocked.client.create_product(NEW_PRODUCT)
        assert len(mocked.requests) == 1


async def test_post_is_resent_when_it_provably_never_left(make_client) -> None:  # type: ignore[no-untyped-def]
    limited = httpx.Response(429, text="Rate limit exceeded.", headers={"retry-after": "0"})
    mocked = make_client(
        _sequence(httpx.ConnectError("refused"), limited, httpx.Response(201, json=_product_json()))
    )
    product = await mocked.client.create_product(NEW_PRODUCT)
    assert product.price_before_tax == Decimal("10.50")
    assert len(mocked.requests) == 3


async def test_ambiguous_post_retries_can_be_opted_into(make_client) -> None:  # type: ignore[no-untyped-def]
    mocked = make_client(
        _sequence(httpx.ReadTimeout("slow"), httpx.Response(201, json=_product_json())),
        retry_ambiguous_writes=True,
    )
    await mocked.client.create_product(NEW_PRODUCT)
    assert len(mocked.requests) == 2


async def test_idempotent_put_is_retried(make_client) -> None:  # type: ignore[no-untyped-def]
    from stockpit_pennylane.client.bodies import ProductUpdate

    mocked = make_client(_sequence(httpx.Response(503), httpx.Response(200, json=_product_json())))
    await mocked.client.update_product(5, ProductUpdate(label="Chair"))
    assert len(mocked.requests) == 2


async def test_token_never_appears_in_reprs_errors_tracebacks_or_logs(  # type: ignore[no-untyped-def]
    make_client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked = make_client(
        _sequence(
            httpx.ReadTimeout("slow"),
            httpx.Response(503),
            httpx.Response(401, json={"error": "The access token is invalid", "status": 401}),
        )
    )
    token = mocked.token
    with pytest.raises(PennylaneError) as caught:
        await mocked.client.get_me()
    rendered = [
        repr(mocked.client),
        str(caught.value),
        repr(caught.value),
        "".join(traceback.format_exception(caught.value)),
        caplog.text,
    ]
    assert caught.value.status == 401
    assert len(mocked.requests) == 3
    for text in rendered:
        assert token not in text
    assert "sha256:" in repr(mocked.client)


async def test_metrics_hook_sees_every_attempt(make_client) -> None:  # type: ignore[no-untyped-def]
    records: list[RequestRecord] = []
    mocked = make_client(
        _sequence(httpx.ReadTimeout("slow"), httpx.Response(200, json=ME)),
        on_request=records.append,
    )
    await mocked.client.get_me()
    assert [(r.method, r.path, r.status, r.attempt) for r in records] == [
        ("GET", "me", None, 1),
        ("GET", "me", 200, 2),
    ]
    assert mocked.client.metrics.by_status == {200: 1}
