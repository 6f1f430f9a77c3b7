"""The expected stock from the sandbox's per-product quantities equals the one computed from
every invoice record (a served sandbox, no mocks)."""

from __future__ import annotations

from pennylane_sandbox import SandboxConfig, create_app
from pennylane_sandbox.serving import serve_in_thread
from stockpit_ops.probes import SandboxAdmin

TOKEN = "probe-token"


def test_expected_stock_from_quantities_matches_the_invoice_records() -> None:
    app = create_app(SandboxConfig(tokens=[TOKEN], rate_limit=10_000))
    with serve_in_thread(app) as url:
        sandbox = SandboxAdmin(url)
        sandbox.seed_invoices(
            TOKEN, count=400, seed=5, products=15, service_share=0.3, draft_share=0.2,
            credit_note_share=0.2, max_lines=8,
        )  # fmt: skip

        from_quantities = sandbox.expected_stock_from_quantities(TOKEN)
        from_records = sandbox.expected_stock(TOKEN)
        services = sandbox.service_products(TOKEN)
        quantities = sandbox.product_quantities(TOKEN)

    assert from_quantities == from_records
    assert from_quantities
    assert services
    assert not services & set(from_quantities)
    assert any(q["drafts"] and q["credit_notes"] for q in quantities.values())
