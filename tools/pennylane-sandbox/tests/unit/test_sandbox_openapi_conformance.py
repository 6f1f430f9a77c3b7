"""Every operation the sandbox serves answers a valid request with a body that matches the
response schema of that operation in Pennylane's openapi.json; documented errors too."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
from pennylane_sandbox import SandboxApp
from pennylane_sandbox.api import served_operations
from pennylane_sandbox.spec import response_validator

API = "/api/external/v2"
ADDRESS = {
    "address": "1 rue de la Paix",
    "postal_code": "75002",
    "city": "Paris",
    "country_alpha2": "FR",
}


class SchemaChecker:
    """Sends requests and validates each response body against the spec."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.exercised: set[tuple[str, str]] = set()
        self.mismatches: list[str] = []

    async def call(
        self,
        method: str,
        spec_path: str,
        expect: int,
        path: str | None = None,
        **kwargs: Any,
    ) -> Any:
        response = await self.http.request(method, API + (path or spec_path), **kwargs)
        assert response.status_code == expect, (
            method,
            spec_path,
            response.status_code,
            response.text,
        )
        if 200 <= expect < 300:
            self.exercised.add((method, spec_path))
        if expect == 204:
            assert response.content == b""
            return None
        validator = response_validator(method, spec_path, expect)
        if validator is None:
            self.mismatches.append(f"{method} {spec_path} {expect}: the spec has no JSON schema")
            return response.json()
        body = response.json()
        for error in validator.all_errors(body):
            self.mismatches.append(f"{method} {spec_path} {expect}: {error}")
        return body


def _filter(*conditions: tuple[str, str, object]) -> dict[str, str]:
    return {
        "filter": json.dumps([{"field": f, "operator": o, "value": v} for f, o, v in conditions])
    }


async def test_every_served_operation_matches_its_response_schema(
    client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    check = SchemaChecker(client)
    token_a = tokens[0]
    today = dt.datetime.now(dt.UTC).date().isoformat()
    later = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()

    await check.call("GET", "/me", 200)

    accounts = await check.call(
        "GET", "/ledger_accounts", 200, params=_filter(("number", "eq", "707000"))
    )
    sales_account = accounts["items"][0]["id"]
    await check.call("GET", "/ledger_accounts/{id}", 200, path=f"/ledger_accounts/{sales_account}")

    product = await check.call(
        "POST",
        "/products",
        201,
        json={
            "label": "Chaise",
            "price_before_tax": "45.50",
            "vat_rate": "FR_200",
            "reference": "SKU-1",
            "ledger_account_id": sales_account,
            "unit": "piece",
        },
    )
    await check.call(
        "PUT",
        "/products/{id}",
        200,
        path=f"/products/{product['id']}",
        json={"label": "Chaise bois"},
    )
    await check.call("GET", "/products/{id}", 200, path=f"/products/{product['id']}")
    await check.call("GET", "/products", 200, params=_filter(("reference", "eq", "SKU-1")))

    company = await check.call(
        "POST",
        "/company_customers",
        201,
        json={
            "name": "ACME",
            "billing_address": ADDRESS,
            "emails": ["a@acme.test"],
            "external_reference": "cust-1",
            "ledger_account": {"number": "411ACME"},
        },
    )
    await check.call(
        "PUT",
        "/company_customers/{id}",
        200,
        path=f"/company_customers/{company['id']}",
        json={"vat_number": "FR123"},
    )
    await check.call(
        "GET", "/company_customers/{id}", 200, path=f"/company_customers/{company['id']}"
    )
    person = await check.call(
        "POST",
        "/individual_customers",
        201,
        json={"first_name": "Ada", "last_name": "Lovelace", "billing_address": ADDRESS},
    )
    await check.call(
        "PUT",
        "/individual_customers/{id}",
        200,
        path=f"/individual_customers/{person['id']}",
        json={"phone": "0102030405"},
    )
    await check.call(
        "GET", "/individual_customers/{id}", 200, path=f"/individual_customers/{person['id']}"
    )
    await check.call("GET", "/customers", 200)
    await check.call("GET", "/customers/{id}", 200, path=f"/customers/{person['id']}")

    supplier = await check.call(
        "POST", "/suppliers", 201, json={"name": "Bois SA", "postal_address": ADDRESS}
    )
    await check.call(
        "PUT",
        "/suppliers/{id}",
        200,
        path=f"/suppliers/{supplier['id']}",
        json={"emails": ["compta@bois.test"]},
    )
    await check.call("GET", "/suppliers/{id}", 200, path=f"/suppliers/{supplier['id']}")
    await check.call("GET", "/suppliers", 200, params=_filter(("name", "start_with", "Bois")))

    attachment = await check.call(
        "POST",
        "/file_attachments",
        201,
        files={"file": ("facture.pdf", b"%PDF-1.4 test", "application/pdf")},
    )
    supplier_invoice = await check.call(
        "POST",
        "/supplier_invoices/import",
        201,
        json={
            "file_attachment_id": attachment["id"],
            "supplier_id": supplier["id"],
            "date": today,
            "deadline": later,
            "currency_amount_before_tax": "100.00",
            "currency_amount": "120.00",
            "currency_tax": "20.00",
            "invoice_lines": [
                {"currency_amount": "120.00", "currency_tax": "20.00", "vat_rate": "FR_200"}
            ],
        },
    )
    await check.call("GET", "/supplier_invoices", 200)
    await check.call(
        "GET", "/supplier_invoices/{id}", 200, path=f"/supplier_invoices/{supplier_invoice['id']}"
    )
    await check.call(
        "GET",
        "/supplier_invoices/{supplier_invoice_id}/invoice_lines",
        200,
        path=f"/supplier_invoices/{supplier_invoice['id']}/invoice_lines",
    )

    lines = [
        {"product_id": product["id"], "quantity": 2},
        {
            "label": "Livraison",
            "raw_currency_unit_price": "15",
            "unit": "forfait",
            "vat_rate": "FR_200",
            "quantity": 1,
        },
    ]
    quote = await check.call(
        "POST",
        "/quotes",
        201,
        json={
            "date": today,
            "deadline": later,
            "customer_id": company["id"],
            "invoice_lines": lines,
        },
    )
    await check.call("GET", "/quotes", 200)
    await check.call("GET", "/quotes/{id}", 200, path=f"/quotes/{quote['id']}")
    await check.call(
        "GET", "/quotes/{quote_id}/invoice_lines", 200, path=f"/quotes/{quote['id']}/invoice_lines"
    )
    await check.call(
        "PUT",
        "/quotes/{id}/update_status",
        200,
        path=f"/quotes/{quote['id']}/update_status",
        json={"status": "accepted"},
    )

    draft = await check.call(
        "POST",
        "/customer_invoices",
        201,
        json={
            "date": today,
            "deadline": later,
            "customer_id": company["id"],
            "draft": True,
            "external_reference": "inv-1",
            "invoice_lines": lines,
        },
    )
    await check.call(
        "PUT",
        "/customer_invoices/{id}",
        200,
        path=f"/customer_invoices/{draft['id']}",
        json={"label": "Commande 1", "invoice_lines": {"create": [lines[0]]}},
    )
    invoice = await check.call(
        "PUT",
        "/customer_invoices/{id}/finalize",
        200,
        path=f"/customer_invoices/{draft['id']}/finalize",
    )
    credit_note = await check.call(
        "POST",
        "/customer_invoices",
        201,
        json={
            "date": today,
            "deadline": later,
            "customer_id": company["id"],
            "invoice_lines": [{"product_id": product["id"], "quantity": -1}],
        },
    )
    await check.call(
        "POST",
        "/customer_invoices/{id}/link_credit_note",
        200,
        path=f"/customer_invoices/{invoice['id']}/link_credit_note",
        json={"credit_note_id": credit_note["id"]},
    )
    await check.call(
        "POST",
        "/customer_invoices/create_from_quote",
        201,
        json={"quote_id": quote["id"], "draft": True},
    )
    other_draft = await check.call(
        "POST",
        "/customer_invoices",
        201,
        json={
            "date": today,
            "deadline": later,
            "customer_id": company["id"],
            "draft": True,
            "invoice_lines": lines,
        },
    )
    await check.call(
        "DELETE", "/customer_invoices/{id}", 204, path=f"/customer_invoices/{other_draft['id']}"
    )
    listing = await check.call(
        "GET", "/customer_invoices", 200, params={"include": "invoice_lines", "sort": "date"}
    )
    assert str(invoice["id"]) in listing["included"]["invoice_lines"]
    await check.call(
        "GET", "/customer_invoices/{id}", 200, path=f"/customer_invoices/{invoice['id']}"
    )
    await check.call(
        "GET",
        "/customer_invoices/{customer_invoice_id}/invoice_lines",
        200,
        path=f"/customer_invoices/{invoice['id']}/invoice_lines",
    )

    created = await client.post(
        f"/_sandbox/{token_a}/commercial_documents",
        json={
            "customer_id": company["id"],
            "date": today,
            "quote_id": quote["id"],
            "invoice_lines": lines,
        },
    )
    assert created.status_code == 201, created.text
    document_id = created.json()["id"]
    await check.call(
        "GET",
        "/commercial_documents",
        200,
        params=_filter(("document_type", "eq", "purchasing_order")),
    )
    await check.call(
        "GET", "/commercial_documents/{id}", 200, path=f"/commercial_documents/{document_id}"
    )
    await check.call(
        "GET",
        "/commercial_documents/{commercial_document_id}/invoice_lines",
        200,
        path=f"/commercial_documents/{document_id}/invoice_lines",
    )

    for resource in (
        "customer_invoices",
        "products",
        "customers",
        "suppliers",
        "supplier_invoices",
        "quotes",
    ):
        changes = await check.call("GET", f"/changelogs/{resource}", 200)
        assert changes["items"], resource

    assert check.mismatches == []
    assert set(served_operations()) == check.exercised


async def test_documented_error_responses_match_their_schemas(
    app: SandboxApp, client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    check = SchemaChecker(client)
    await check.call("GET", "/customer_invoices/{id}", 404, path="/customer_invoices/1")
    await check.call("GET", "/customer_invoices", 400, params={"limit": "0"})
    await check.call("GET", "/products", 400, params={"filter": "not json"})
    await check.call("POST", "/products", 400, json={"label": "no price", "vat_rate": "FR_200"})
    await check.call(
        "POST",
        "/products",
        400,
        json={"label": "numeric price", "price_before_tax": 10, "vat_rate": "FR_200"},
    )
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(weeks=5)).isoformat()
    await check.call("GET", "/changelogs/customer_invoices", 422, params={"start_date": old})
    customer = {"name": "Dup", "billing_address": ADDRESS, "external_reference": "dup"}
    await check.call("POST", "/company_customers", 201, json=customer)
    await check.call("POST", "/company_customers", 409, json=customer)
    await check.call("GET", "/customer_invoices", 401, headers={"Authorization": "Bearer nope"})

    app.sandbox.companies[tokens[1]].scopes = frozenset({"products:readonly"})
    check.http.headers["Authorization"] = f"Bearer {tokens[1]}"
    await check.call("GET", "/products", 200)
    await check.call(
        "POST", "/products", 403, json={"label": "x", "price_before_tax": "1", "vat_rate": "FR_200"}
    )
    await check.call("GET", "/customer_invoices", 403)
    assert check.mismatches == []
