"""`PennylaneWriter` against the Pennylane sandbox in-process: last change wins (rule 13),
individuals' names, and a SKU Pennylane cannot clear."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from outbound.domain.last_change import WrittenState
from outbound.domain.writes import Done, Failed, Outcome, PennylaneWon
from outbound.service_layer.pennylane_writes import OutboundRequest, PennylaneWriter
from pennylane_sandbox import SandboxApp, SandboxConfig, create_app
from stockpit_contracts.payloads.catalog import PostalAddress
from stockpit_contracts.payloads.outbound import CustomerWriteRequested, ProductChangeRequested
from stockpit_pennylane.client import PennylaneClient
from stockpit_pennylane.client.bodies import (
    Address,
    CompanyCustomerCreate,
    CompanyCustomerUpdate,
    IndividualCustomerCreate,
    ProductCreate,
    ProductUpdate,
)
from stockpit_pennylane.client.models import Product

TOKEN = "writer-unit-token"
SECOND = timedelta(seconds=1)
PARIS = Address(address="8 rue de la paix", postal_code="75002", city="Paris", country_alpha2="FR")


@pytest.fixture
def sandbox() -> SandboxApp:
    return create_app(SandboxConfig(tokens=[TOKEN], rate_limit=10_000))


@pytest.fixture
async def client(sandbox: SandboxApp) -> AsyncIterator[PennylaneClient]:
    pennylane = PennylaneClient(
        TOKEN,
        base_url="http://sandbox.test/api/external/v2",
        transport=httpx.ASGITransport(app=sandbox),
    )
    yield pennylane
    await pennylane.aclose()


async def write(
    client: PennylaneClient, request: OutboundRequest, last_write: WrittenState | None = None
) -> Outcome:
    async def checkpoint(progress: Mapping[str, Any]) -> None:
        return None

    writer = PennylaneWriter(
        client, "acme", progress={}, checkpoint=checkpoint, last_write=last_write
    )
    return await writer.write(request)


async def chair(client: PennylaneClient) -> Product:
    return await client.create_product(
        ProductCreate(
            label="Chaise", reference="CH-1", price_before_tax=Decimal(10), vat_rate="FR_200"
        )
    )


def change(product: Product, at: datetime, **values: Any) -> ProductChangeRequested:
    """A Stockpit change made `at`, by a Stockpit that last saw the product as it was created."""
    fields: dict[str, Any] = {"label": "Chaise", "reference": "CH-1", **values}
    return ProductChangeRequested(
        product_id="p1",
        pennylane_product_id=product.id,
        changed_at=at,
        pennylane_label="Chaise",
        pennylane_reference="CH-1",
        pennylane_updated_at=product.updated_at,
        **fields,
    )


async def test_stockpit_rename_then_later_pennylane_rename_keeps_pennylane(
    client: PennylaneClient,
) -> None:
    product = await chair(client)
    stockpit_at = product.updated_at  # renamed A in Stockpit (while disconnected)...
    renamed = await client.update_product(product.id, ProductUpdate(label="Chaise B"))
    assert renamed.updated_at > stockpit_at  # ...then B in Pennylane, later
    request = change(product, stockpit_at, label="A")
    outcome = await write(client, request)
    assert isinstance(outcome, PennylaneWon)
    assert "label" in outcome.reason
    assert (await client.get_product(product.id)).label == "Chaise B"


async def test_pennylane_rename_then_later_stockpit_rename_writes_stockpit(
    client: PennylaneClient,
) -> None:
    product = await chair(client)
    renamed = await client.update_product(product.id, ProductUpdate(label="Chaise B"))
    outcome = await write(client, change(product, renamed.updated_at + SECOND, label="A"))
    assert isinstance(outcome, Done)
    now = await client.get_product(product.id)
    assert (now.label, now.reference) == ("A", "CH-1")
    assert outcome.state is not None
    assert outcome.state.pennylane_id == product.id
    assert outcome.state.seen.fields == {"label": "A", "reference": "CH-1"}


async def test_a_pennylane_price_edit_does_not_block_a_stockpit_rename(
    client: PennylaneClient,
) -> None:
    product = await chair(client)
    stockpit_at = product.updated_at
    await client.update_product(product.id, ProductUpdate(price_before_tax=Decimal(12)))
    outcome = await write(client, change(product, stockpit_at, label="A"))
    assert isinstance(outcome, Done)
    assert (await client.get_product(product.id)).label == "A"


async def test_a_sku_pennylane_changed_is_kept_while_the_stockpit_rename_is_written(
    client: PennylaneClient,
) -> None:
    product = await chair(client)
    stockpit_at = product.updated_at  # Stockpit renamed, its SKU unchanged
    await client.update_product(product.id, ProductUpdate(reference="CH-2"))
    outcome = await write(client, change(product, stockpit_at, label="A"))
    assert isinstance(outcome, Done)
    now = await client.get_product(product.id)
    assert (now.label, now.reference) == ("A", "CH-2")


async def test_a_second_stockpit_rename_sent_late_follows_our_own_first_write(
    client: PennylaneClient,
) -> None:
    product = await chair(client)
    first_at, second_at = product.updated_at, product.updated_at + timedelta(microseconds=1)
    first = await write(client, change(product, first_at, label="A1"))
    assert isinstance(first, Done)
    # Our write of A1 is later than the A2 change, and Stockpit's base is still "Chaise".
    second = await write(client, change(product, second_at, label="A2"), last_write=first.state)
    assert isinstance(second, Done)
    assert (await client.get_product(product.id)).label == "A2"


async def test_clearing_the_sku_is_reported_never_done(client: PennylaneClient) -> None:
    product = await chair(client)
    later = product.updated_at + SECOND
    outcome = await write(client, change(product, later, label="A", reference=None))
    assert isinstance(outcome, Failed)
    assert not outcome.retryable
    assert "cannot clear" in outcome.reason
    assert "'CH-1'" in outcome.reason
    assert "label was written" in outcome.reason
    now = await client.get_product(product.id)
    assert (now.label, now.reference) == ("A", "CH-1")


async def test_an_email_change_keeps_an_individuals_first_and_last_names(
    client: PennylaneClient,
) -> None:
    person = await client.create_individual_customer(
        IndividualCustomerCreate(
            first_name="Jean Pierre", last_name="Martin", billing_address=PARIS, emails=["a@x.fr"]
        )
    )
    request = CustomerWriteRequested(
        customer_id="c1",
        pennylane_customer_id=person.id,
        kind="company",  # Stockpit keeps no person/company distinction
        name="Jean Pierre Martin",
        emails=("b@x.fr",),
        billing_address=PostalAddress(
            address="8 rue de la paix", postal_code="75002", city="Paris", country_alpha2="FR"
        ),
        changed_at=person.updated_at + SECOND,
        pennylane_name=person.name,
        pennylane_emails=("a@x.fr",),
        pennylane_updated_at=person.updated_at,
    )
    outcome = await write(client, request)
    assert isinstance(outcome, Done)
    now = await client.get_customer(person.id)
    assert now.customer_type == "individual"
    assert (now.first_name, now.last_name, now.emails) == ("Jean Pierre", "Martin", ["b@x.fr"])


async def test_a_customer_renamed_in_pennylane_after_the_stockpit_change_keeps_pennylane(
    client: PennylaneClient,
) -> None:
    company = await client.create_company_customer(
        CompanyCustomerCreate(name="Dupont", billing_address=PARIS)
    )
    stockpit_at = company.updated_at
    renamed = await client.update_company_customer(
        company.id, CompanyCustomerUpdate(name="Dupont SA")
    )
    assert renamed.updated_at > company.updated_at
    request = CustomerWriteRequested(
        customer_id="c2",
        pennylane_customer_id=company.id,
        kind="company",
        name="Dupont SARL",
        changed_at=stockpit_at,
        pennylane_name="Dupont",
        pennylane_emails=(),
        pennylane_updated_at=company.updated_at,
    )
    outcome = await write(client, request)
    assert isinstance(outcome, PennylaneWon)
    assert (await client.get_customer(company.id)).name == "Dupont SA"


async def test_a_request_without_what_stockpit_saw_leaves_the_reference_alone(
    client: PennylaneClient,
) -> None:
    """An older inventory's request (no base): a missing SKU cannot be told from a removed one."""
    product = await chair(client)
    request = ProductChangeRequested(
        product_id="p1",
        pennylane_product_id=product.id,
        label="A",
        changed_at=product.updated_at + SECOND,
    )
    outcome = await write(client, request)
    assert isinstance(outcome, Done)
    now = await client.get_product(product.id)
    assert (now.label, now.reference) == ("A", "CH-1")
