"""Client ⇄ sandbox over real HTTP (uvicorn on a loopback port)."""

import asyncio
from decimal import Decimal

import pytest
from stockpit_pennylane.client import (
    AmbiguousWriteError,
    BadRequest,
    ChangelogExpired,
    ChangelogResource,
    Filter,
    NotFound,
    PennylaneClient,
    PennylaneError,
    RateLimit,
    RetryPolicy,
    Unauthorized,
)
from stockpit_pennylane.client.bodies import ProductCreate

FAST = RateLimit(requests=100_000, window_s=5.0, safety_margin_s=0.0)


def _client(sandbox, **kwargs) -> PennylaneClient:  # type: ignore[no-untyped-def]
    kwargs.setdefault("rate_limit", FAST)
    return PennylaneClient(sandbox.token, base_url=sandbox.api_url, **kwargs)


async def test_pagination_filters_batch_and_errors(sandbox_factory) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory(rate_limit=100_000)
    seeded = sandbox.admin(
        "POST",
        f"/{sandbox.token}/seed/customer_invoices",
        {"count": 230, "min_lines": 1, "max_lines": 30, "seed": 7},
    )
    async with _client(sandbox) as client:
        listed = [i async for i in client.iter_customer_invoices(sort="id", page_size=50)]
        assert [i.id for i in listed] == list(range(seeded["first_id"], seeded["last_id"] + 1))

        with_lines = [
            i
            async for i in client.iter_customer_invoices_with_lines(
                filters=[Filter.eq("draft", False)], sort="id"
            )
        ]
        assert len(with_lines) == 230
        assert sum(len(i.lines) for i in with_lines) == seeded["lines"]
        long_ones = [i for i in with_lines if len(i.lines) > 20]
        assert long_ones, "the seed must produce invoices beyond the include cap"

        # The lines endpoint agrees with what the include + fallback assembled.
        sample = long_ones[0]
        direct = [line async for line in client.iter_customer_invoice_lines(sample.invoice.id)]
        assert sorted(line.id for line in direct) == sorted(line.id for line in sample.lines)

        before = client.metrics.requests
        ids = [i.invoice.id for i in with_lines[:150]]
        batch = await client.fetch_customer_invoices_with_lines(ids)
        long_in_batch = sum(1 for i in with_lines[:150] if len(i.lines) > 20)
        assert sorted(i.invoice.id for i in batch) == sorted(ids)
        # 2 list requests (100 + 50 ids) plus one lines request per long invoice.
        assert client.metrics.requests - before == 2 + long_in_batch

        first_customer = listed[0].customer
        assert first_customer is not None
        customer_id = first_customer.id
        by_customer = [
            i
            async for i in client.iter_customer_invoices(
                filters=[Filter.eq("customer_id", customer_id)]
            )
        ]
        assert by_customer
        assert {i.customer.id if i.customer else None for i in by_customer} == {customer_id}
        assert len(by_customer) == sum(
            1 for i in listed if i.customer is not None and i.customer.id == customer_id
        )

        found = await client.find_customer_invoice_by_external_reference(
            listed[3].external_reference
        )
        assert found is not None
        assert found.id == listed[3].id

        accounts = [
            a
            async for a in client.iter_ledger_accounts(filters=[Filter.start_with("number", "706")])
        ]
        assert [a.number for a in accounts] == ["706000"]

        with pytest.raises(NotFound):
            await client.get_customer_invoice(10**9)
        with pytest.raises(BadRequest):
            await client._get("customer_invoices", {"cursor": "not-a-cursor"})

    async with PennylaneClient("wrong-token", base_url=sandbox.api_url) as stranger:
        with pytest.raises(Unauthorized):
            await stranger.get_me()


async def test_changelog_watermark_and_expired_start_date_rescan(sandbox_factory) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory(rate_limit=100_000)
    sandbox.admin("POST", f"/{sandbox.token}/seed/customer_invoices", {"count": 30})
    async with _client(sandbox) as client:
        events = [
            e
            async for e in client.iter_changelog(
                ChangelogResource.CUSTOMER_INVOICES, since=None, page_size=7
            )
        ]
        assert len({e.id for e in events}) == 30
        processed = [e.processed_at for e in events]
        assert processed == sorted(processed)
        watermark = processed[-1]

        # Down for more than the retention: the old watermark must not silently skip ahead.
        sandbox.admin("POST", "/clock/advance", {"seconds": 5 * 7 * 24 * 3600})
        with pytest.raises(ChangelogExpired) as caught:
            async for _ in client.iter_changelog(
                ChangelogResource.CUSTOMER_INVOICES, since=watermark
            ):
                pass
        assert caught.value.start_date == watermark

        # The caller's re-scan: list everything, then resume from the oldest retained change.
        rescanned = [i.id async for i in client.iter_customer_invoices()]
        assert len(rescanned) == 30
        resumed = [
            e async for e in client.iter_changelog(ChangelogResource.CUSTOMER_INVOICES, since=None)
        ]
        assert resumed == []


async def test_fifty_concurrent_callers_stay_within_25_per_5s(sandbox_factory) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory()  # Pennylane's own 25 requests / 5 s
    poller = PennylaneClient(sandbox.token, base_url=sandbox.api_url, budget_share=0.6)
    outbound = PennylaneClient(sandbox.token, base_url=sandbox.api_url, budget_share=0.4)
    async with poller, outbound:
        calls = [poller.get_me() for _ in range(35)] + [outbound.get_me() for _ in range(15)]
        results = await asyncio.gather(*calls)
    assert len(results) == 50
    log = sandbox.admin("GET", f"/{sandbox.token}/requests")
    assert len(log["requests"]) == 50
    assert log["max_received_in_any_window"] <= 25
    assert poller.metrics.rate_limited == outbound.metrics.rate_limited == 0


async def test_injected_faults_end_in_success_or_the_right_typed_error(sandbox_factory) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory(rate_limit=100_000)
    sandbox.admin("POST", f"/{sandbox.token}/seed/customer_invoices", {"count": 5})
    sandbox.admin(
        "PUT",
        "/faults",
        {"rate_429": 0.1, "rate_500": 0.1, "rate_503": 0.1, "rate_drop": 0.05, "seed": 3},
    )
    policy = RetryPolicy(max_attempts=10, base_delay_s=0.01, max_delay_s=0.05)
    async with _client(sandbox, retry_policy=policy, timeout_s=5.0) as client:
        reads = await asyncio.gather(*(client.get_me() for _ in range(60)), return_exceptions=True)
        assert all(not isinstance(r, BaseException) for r in reads), reads
        assert client.metrics.retries > 0

        outcomes = []
        for n in range(20):
            body = ProductCreate(
                label=f"P{n}",
                price_before_tax=Decimal("9.90"),
                vat_rate="FR_200",
                external_reference=f"fault-p-{n}",
            )
            try:
                outcomes.append(await client.create_product(body))
            except AmbiguousWriteError:
                # The outbound service's recovery: look up, create only if absent.
                existing = await client.find_product_by_external_reference(f"fault-p-{n}")
                outcomes.append(existing or await _create_until_clear(client, body))
            except PennylaneError as error:  # pragma: no cover - shows the unexpected type
                pytest.fail(f"unexpected {error!r}")
    sandbox.admin("PUT", "/faults", {})
    writes = sandbox.admin("GET", f"/{sandbox.token}/writes")["items"]
    counts = {w["external_reference"]: w["count"] for w in writes if w["resource"] == "products"}
    assert all(counts.get(f"fault-p-{n}") == 1 for n in range(20)), counts
    assert len(outcomes) == 20


async def _create_until_clear(client: PennylaneClient, body: ProductCreate):  # type: ignore[no-untyped-def]
    while True:
        try:
            return await client.create_product(body)
        except AmbiguousWriteError:
            found = await client.find_product_by_external_reference(body.external_reference or "")
            if found is not None:
                return found


async def test_customer_writes_read_back_as_typed_customers(sandbox_factory) -> None:  # type: ignore[no-untyped-def]
    """Pennylane's company_/individual_customers answers carry no `customer_type`."""
    from stockpit_pennylane.client.bodies import (
        Address,
        CompanyCustomerCreate,
        CompanyCustomerUpdate,
        IndividualCustomerCreate,
        IndividualCustomerUpdate,
    )
    from stockpit_pennylane.client.models import CompanyCustomer, IndividualCustomer

    sandbox = sandbox_factory(rate_limit=100_000)
    address = Address(address="1 rue A", postal_code="75001", city="Paris", country_alpha2="FR")
    async with _client(sandbox) as client:
        company = await client.create_company_customer(
            CompanyCustomerCreate(name="Café", billing_address=address, external_reference="c-1")
        )
        assert isinstance(company, CompanyCustomer)
        renamed = await client.update_company_customer(
            company.id, CompanyCustomerUpdate(name="Café des Arts")
        )
        assert (renamed.id, renamed.name) == (company.id, "Café des Arts")
        person = await client.create_individual_customer(
            IndividualCustomerCreate(
                first_name="Marie", last_name="Dupont", billing_address=address
            )
        )
        assert isinstance(person, IndividualCustomer)
        updated = await client.update_individual_customer(
            person.id, IndividualCustomerUpdate(emails=["marie@dupont.fr"])
        )
        assert updated.emails == ["marie@dupont.fr"]
        found = await client.find_customer_by_external_reference("c-1")
        assert isinstance(found, CompanyCustomer)
        assert found.name == "Café des Arts"
