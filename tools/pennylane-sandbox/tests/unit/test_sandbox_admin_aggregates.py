"""The admin surface's per-product quantities agree with the company's own invoice records."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import httpx


async def test_product_quantities_sum_each_kind_of_invoice_per_product(
    client: httpx.AsyncClient, tokens: tuple[str, str]
) -> None:
    token = tokens[0]
    seeded = await client.post(
        f"/_sandbox/{token}/seed/customer_invoices",
        json={"count": 300, "seed": 11, "products": 12, "draft_share": 0.2,
              "credit_note_share": 0.2, "max_lines": 6},
    )  # fmt: skip
    assert seeded.status_code == 201, seeded.text
    invoices = (await client.get(f"/_sandbox/{token}/records/customer_invoices")).json()["items"]
    expected: dict[int, dict[str, Decimal]] = defaultdict(
        lambda: {"finalized_invoices": Decimal(0), "credit_notes": Decimal(0), "drafts": Decimal(0)}
    )
    for invoice in invoices:
        if invoice["draft"]:
            kind = "drafts"
        elif invoice["status"] == "credit_note":
            kind = "credit_notes"
        else:
            kind = "finalized_invoices"
        for line in invoice["invoice_lines_items"]:
            if line["product"] is not None:
                expected[line["product"]["id"]][kind] += Decimal(line["quantity"])

    response = await client.get(f"/_sandbox/{token}/product_quantities")

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    found = {
        item["product_id"]: {kind: Decimal(item[kind]) for kind in expected[item["product_id"]]}
        for item in items
    }
    assert found == expected
    assert [item["product_id"] for item in items] == sorted(found)
    for kind in ("finalized_invoices", "credit_notes", "drafts"):
        assert any(totals[kind] != 0 for totals in found.values()), kind
    # The other company's invoices are its own.
    other = await client.get(f"/_sandbox/{tokens[1]}/product_quantities")
    assert other.json() == {"items": []}


async def test_product_quantities_of_an_unknown_company_is_a_404(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/_sandbox/no-such-token/product_quantities")

    assert response.status_code == 404, response.text
