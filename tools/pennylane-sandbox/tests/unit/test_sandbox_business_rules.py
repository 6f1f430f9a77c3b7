"""Pennylane's business rules: finalization, numbering, credit notes, uniqueness, imports,
company isolation, authentication and scopes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from pennylane_sandbox import SandboxApp

API = "/api/external/v2"
ADDRESS = {"address": "2 quai", "postal_code": "69001", "city": "Lyon", "country_alpha2": "FR"}
TODAY = dt.datetime.now(dt.UTC).date()


async def _customer(client: httpx.AsyncClient) -> int:
    response = await client.post(
        f"{API}/company_customers", json={"name": "ACME", "billing_address": ADDRESS}
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _invoice(
    client: httpx.AsyncClient, customer_id: int, *, draft: bool, day: dt.date = TODAY, **extra: Any
) -> httpx.Response:
    body = {
        "date": day.isoformat(),
        "deadline": (day + dt.timedelta(days=30)).isoformat(),
        "customer_id": customer_id,
        "invoice_lines": [
            {
                "label": "Table",
                "raw_currency_unit_price": "100.00",
                "unit": "piece",
                "vat_rate": "FR_200",
                "quantity": 3,
            },
            {
                "label": "Livre",
                "raw_currency_unit_price": "12.345",
                "unit": "piece",
                "vat_rate": "FR_55",
                "quantity": 2,
            },
        ],
        **extra,
    }
    if draft:
        body["draft"] = True
    return await client.post(f"{API}/customer_invoices", json=body)


async def test_amounts_are_decimal_strings_computed_per_line(client: httpx.AsyncClient) -> None:
    invoice = (await _invoice(client, await _customer(client), draft=True)).json()
    # 3 x 100.00 at 20% and 2 x 12.345 at 5.5%: 300.00 + 60.00, 24.69 + 1.36
    assert invoice["currency_amount_before_tax"] == "324.69"
    assert invoice["currency_tax"] == "61.36"
    assert invoice["currency_amount"] == "386.05"
    lines = (await client.get(f"{API}/customer_invoices/{invoice['id']}/invoice_lines")).json()
    by_label = {line["label"]: line for line in lines["items"]}
    assert by_label["Livre"]["quantity"] == "2"
    assert by_label["Livre"]["raw_currency_unit_price"] == "12.345"
    assert by_label["Livre"]["currency_tax"] == "1.36"


async def test_numbers_are_assigned_at_finalization_and_finalized_invoices_are_frozen(
    client: httpx.AsyncClient,
) -> None:
    customer_id = await _customer(client)
    draft = (await _invoice(client, customer_id, draft=True)).json()
    assert draft["draft"] is True
    assert draft["status"] == "draft"
    assert draft["invoice_number"] == ""
    edited = await client.put(
        f"{API}/customer_invoices/{draft['id']}", json={"special_mention": "Merci"}
    )
    assert edited.status_code == 200
    final = await client.put(f"{API}/customer_invoices/{draft['id']}/finalize")
    assert final.status_code == 200
    number = final.json()["invoice_number"]
    assert number.startswith(f"F{TODAY.year}")
    assert final.json()["draft"] is False
    again = await client.put(f"{API}/customer_invoices/{draft['id']}/finalize")
    assert again.status_code == 422
    frozen = await client.put(
        f"{API}/customer_invoices/{draft['id']}", json={"deadline": TODAY.isoformat()}
    )
    assert frozen.status_code == 422
    assert frozen.json()["status"] == 422
    lines_frozen = await client.put(
        f"{API}/customer_invoices/{draft['id']}",
        json={"invoice_lines": {"delete": [{"id": 1}]}},
    )
    assert lines_frozen.status_code == 422
    annotated = await client.put(
        f"{API}/customer_invoices/{draft['id']}", json={"label": "Relabelled"}
    )
    assert annotated.status_code == 200
    assert annotated.json()["invoice_number"] == number
    assert (await client.delete(f"{API}/customer_invoices/{draft['id']}")).status_code == 422
    finalized_now = (await _invoice(client, customer_id, draft=False)).json()
    assert finalized_now["invoice_number"] > number


async def test_a_refused_draft_update_changes_nothing(client: httpx.AsyncClient) -> None:
    draft = (await _invoice(client, await _customer(client), draft=True)).json()
    line_id = (await client.get(f"{API}/customer_invoices/{draft['id']}/invoice_lines")).json()[
        "items"
    ][0]["id"]
    refused = await client.put(
        f"{API}/customer_invoices/{draft['id']}",
        json={
            "label": "changed",
            "invoice_lines": {"update": [{"id": line_id, "quantity": 50}], "delete": [{"id": 1}]},
        },
    )
    assert refused.status_code == 422
    after = (await client.get(f"{API}/customer_invoices/{draft['id']}")).json()
    assert after == draft


async def test_drafts_can_be_deleted_and_are_then_gone(client: httpx.AsyncClient) -> None:
    draft = (await _invoice(client, await _customer(client), draft=True)).json()
    assert (await client.delete(f"{API}/customer_invoices/{draft['id']}")).status_code == 204
    assert (await client.get(f"{API}/customer_invoices/{draft['id']}")).status_code == 404


async def test_finalizing_before_the_last_finalized_date_is_refused(
    client: httpx.AsyncClient,
) -> None:
    customer_id = await _customer(client)
    assert (await _invoice(client, customer_id, draft=False)).status_code == 201
    earlier = await _invoice(client, customer_id, draft=False, day=TODAY - dt.timedelta(days=3))
    assert earlier.status_code == 422


async def test_external_reference_is_unique_per_company(
    client: httpx.AsyncClient, tokens: tuple[str, str], app: SandboxApp
) -> None:
    customer_id = await _customer(client)
    first = await _invoice(client, customer_id, draft=True, external_reference="order-1")
    assert first.status_code == 201
    duplicate = await _invoice(client, customer_id, draft=True, external_reference="order-1")
    assert duplicate.status_code == 422
    product = {"label": "P", "price_before_tax": "1", "vat_rate": "FR_200"}
    assert (
        await client.post(f"{API}/products", json={**product, "external_reference": "p-1"})
    ).status_code == 201
    assert (
        await client.post(f"{API}/products", json={**product, "external_reference": "p-1"})
    ).status_code == 422
    supplier = {"name": "S", "external_reference": "s-1"}
    assert (await client.post(f"{API}/suppliers", json=supplier)).status_code == 201
    assert (await client.post(f"{API}/suppliers", json=supplier)).status_code == 409
    writes = (await client.get(f"/_sandbox/{tokens[0]}/writes")).json()["items"]
    assert {"resource": "customer_invoices", "external_reference": "order-1", "count": 1} in writes
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sandbox.test",
        headers={"Authorization": f"Bearer {tokens[1]}"},
    )
    async with other:
        other_customer = await _customer(other)
        same_reference = await _invoice(
            other, other_customer, draft=True, external_reference="order-1"
        )
        assert same_reference.status_code == 201


async def test_credit_notes_are_negative_invoices_linked_to_the_invoice(
    client: httpx.AsyncClient,
) -> None:
    customer_id = await _customer(client)
    invoice = (await _invoice(client, customer_id, draft=False)).json()
    credit = await client.post(
        f"{API}/customer_invoices",
        json={
            "date": TODAY.isoformat(),
            "deadline": TODAY.isoformat(),
            "customer_id": customer_id,
            "invoice_lines": [
                {
                    "label": "Table",
                    "raw_currency_unit_price": "100.00",
                    "unit": "piece",
                    "vat_rate": "FR_200",
                    "quantity": -1,
                }
            ],
        },
    )
    assert credit.status_code == 201
    assert credit.json()["currency_amount"] == "-120.00"
    assert credit.json()["credited_invoice"] is None
    refused = await client.post(
        f"{API}/customer_invoices/{credit.json()['id']}/link_credit_note",
        json={"credit_note_id": invoice["id"]},
    )
    assert refused.status_code == 422
    linked = await client.post(
        f"{API}/customer_invoices/{invoice['id']}/link_credit_note",
        json={"credit_note_id": credit.json()["id"]},
    )
    assert linked.status_code == 200
    assert linked.json()["credited_invoice"]["id"] == invoice["id"]


async def test_supplier_invoice_import_totals_must_balance_and_files_import_once(
    client: httpx.AsyncClient,
) -> None:
    supplier_id = (await client.post(f"{API}/suppliers", json={"name": "Bois"})).json()["id"]
    upload = await client.post(
        f"{API}/file_attachments", files={"file": ("f.pdf", b"%PDF", "application/pdf")}
    )
    body = {
        "file_attachment_id": upload.json()["id"],
        "supplier_id": supplier_id,
        "date": TODAY.isoformat(),
        "deadline": TODAY.isoformat(),
        "currency_amount_before_tax": "100.00",
        "currency_amount": "120.00",
        "currency_tax": "20.00",
        "invoice_lines": [
            {"currency_amount": "60.00", "currency_tax": "10.00", "vat_rate": "FR_200"},
            {"currency_amount": "60.00", "currency_tax": "10.00", "vat_rate": "FR_200"},
        ],
    }
    unbalanced_total = await client.post(
        f"{API}/supplier_invoices/import", json={**body, "currency_amount": "121.00"}
    )
    assert unbalanced_total.status_code == 422
    unbalanced_lines = await client.post(
        f"{API}/supplier_invoices/import",
        json={**body, "invoice_lines": body["invoice_lines"][:1]},
    )
    assert unbalanced_lines.status_code == 422
    numeric = await client.post(
        f"{API}/supplier_invoices/import", json={**body, "currency_amount": 120}
    )
    assert numeric.status_code == 400
    assert (await client.post(f"{API}/supplier_invoices/import", json=body)).status_code == 201
    assert (await client.post(f"{API}/supplier_invoices/import", json=body)).status_code == 409
    missing_file = await client.post(f"{API}/file_attachments", files={"other": ("f.pdf", b"x")})
    assert missing_file.status_code == 400


async def test_required_fields_are_400s_with_pennylane_codes(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/individual_customers", json={"first_name": "A", "billing_address": ADDRESS}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "NotExistRequiredKey"
    unknown = await client.post(f"{API}/suppliers", json={"name": "S", "colour": "blue"})
    assert unknown.json()["code"] == "NotExistPropertyDefinition"


async def test_another_companys_records_are_404s(
    app: SandboxApp, client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    customer_id = await _customer(client)
    invoice_id = (await _invoice(client, customer_id, draft=True)).json()["id"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sandbox.test",
        headers={"Authorization": f"Bearer {tokens[1]}"},
    ) as other:
        for path in (
            f"/customer_invoices/{invoice_id}",
            f"/customer_invoices/{invoice_id}/invoice_lines",
            f"/customers/{customer_id}",
            f"/company_customers/{customer_id}",
        ):
            response = await other.get(API + path)
            assert response.status_code == 404, path
            assert response.json()["status"] == 404
        assert (await other.delete(f"{API}/customer_invoices/{invoice_id}")).status_code == 404
        listed = (await other.get(f"{API}/customer_invoices")).json()
        assert listed["items"] == []
        foreign_customer = await _invoice(other, customer_id, draft=True)
        assert foreign_customer.status_code == 422
    assert (await client.get(f"{API}/customer_invoices/{invoice_id}")).status_code == 200


async def test_unknown_or_missing_tokens_are_401s(app: SandboxApp) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test"
    ) as anonymous:
        missing = await anonymous.get(f"{API}/me")
        assert missing.status_code == 401
        assert "ratelimit-limit" not in missing.headers
        wrong = await anonymous.get(f"{API}/me", headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401
        assert wrong.json() == {"error": "The access token is invalid", "status": 401}


async def test_scopes_give_403_for_missing_rights(app: SandboxApp, tokens: tuple[str, str]) -> None:
    app.sandbox.companies[tokens[1]].scopes = frozenset({"customer_invoices:readonly"})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sandbox.test",
        headers={"Authorization": f"Bearer {tokens[1]}"},
    ) as limited:
        assert (await limited.get(f"{API}/customer_invoices")).status_code == 200
        assert (await limited.get(f"{API}/changelogs/customer_invoices")).status_code == 200
        assert (await limited.get(f"{API}/changelogs/products")).status_code == 403
        refused = await limited.post(f"{API}/customer_invoices", json={})
        assert refused.status_code == 403
        assert "customer_invoices:all" in refused.json()["error"]
        me = (await limited.get(f"{API}/me")).json()
        assert me["scopes"] == ["customer_invoices:readonly"]


async def test_purchase_orders_come_from_the_admin_surface(
    client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    customer_id = await _customer(client)
    product = (
        await client.post(
            f"{API}/products",
            json={"label": "Vis", "price_before_tax": "0.10", "vat_rate": "FR_200"},
        )
    ).json()
    created = await client.post(
        f"/_sandbox/{tokens[0]}/commercial_documents",
        json={
            "customer_id": customer_id,
            "invoice_lines": [{"product_id": product["id"], "quantity": 500}],
        },
    )
    assert created.status_code == 201, created.text
    document = created.json()
    assert document["document_type"] == "purchasing_order"
    assert document["currency_amount_before_tax"] == "50.00"
    updated = await client.put(
        f"/_sandbox/{tokens[0]}/commercial_documents/{document['id']}",
        json={"invoice_lines": [{"product_id": product["id"], "quantity": 100}]},
    )
    assert updated.json()["currency_amount_before_tax"] == "10.00"
    assert updated.json()["updated_at"] >= document["updated_at"]
    lines = (await client.get(f"{API}/commercial_documents/{document['id']}/invoice_lines")).json()
    assert [line["quantity"] for line in lines["items"]] == ["100"]
    deleted = await client.delete(f"/_sandbox/{tokens[0]}/commercial_documents/{document['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"{API}/commercial_documents/{document['id']}")).status_code == 404
