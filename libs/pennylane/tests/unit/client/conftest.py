"""Pennylane-shaped JSON payloads and a client wired to an httpx.MockTransport."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from stockpit_pennylane.client import PennylaneClient, RateLimit, RetryPolicy

_TS = "2026-05-04T10:00:00.000Z"
_token_counter = itertools.count()

# Pacing is tested on its own with a fake clock; elsewhere a huge window keeps tests instant.
UNPACED = RateLimit(requests=10_000, window_s=5.0, safety_margin_s=0.0)
FAST_RETRIES = RetryPolicy(max_attempts=4, base_delay_s=0.001, max_delay_s=0.002)


def line_json(line_id: int, product_id: int | None = 7, quantity: str = "2") -> dict[str, Any]:
    return {
        "id": line_id,
        "label": f"Line {line_id}",
        "unit": "piece",
        "quantity": quantity,
        "amount": "24.0",
        "currency_amount": "24.0",
        "description": "",
        "product": None
        if product_id is None
        else {"id": product_id, "url": f"https://x/products/{product_id}"},
        "vat_rate": "FR_200",
        "currency_amount_before_tax": "20.0",
        "currency_tax": "4.0",
        "tax": "4.0",
        "raw_currency_unit_price": "10.0",
        "discount": {"type": "relative", "value": "0"},
        "section_rank": None,
        "imputation_dates": None,
        "created_at": _TS,
        "updated_at": _TS,
    }


def invoice_json(invoice_id: int, **overrides: Any) -> dict[str, Any]:
    url = f"https://x/customer_invoices/{invoice_id}"
    data: dict[str, Any] = {
        "id": invoice_id,
        "label": f"Invoice {invoice_id}",
        "invoice_number": f"F-{invoice_id}",
        "currency": "EUR",
        "amount": "24.0",
        "currency_amount": "24.0",
        "currency_amount_before_tax": "20.0",
        "exchange_rate": "1.0",
        "date": "2026-05-01",
        "deadline": "2026-05-31",
        "currency_tax": "4.0",
        "tax": "4.0",
        "language": "fr_FR",
        "paid": False,
        "status": "upcoming",
        "discount": {"type": "relative", "value": "0"},
        "ledger_entry": {"id": 1},
        "public_file_url": None,
        "filename": None,
        "remaining_amount_with_tax": "24.0",
        "remaining_amount_without_tax": "20.0",
        "draft": False,
        "special_mention": None,
        "customer": {"id": 3, "url": "https://x/customers/3"},
        "invoice_line_sections": {"url": url + "/invoice_line_sections"},
        "invoice_lines": {"url": url + "/invoice_lines"},
        "custom_header_fields": {"url": url + "/custom_header_fields"},
        "categories": {"url": url + "/categories"},
        "pdf_invoice_free_text": "",
        "pdf_invoice_subject": "",
        "pdf_description": None,
        "billing_subscription": None,
        "credited_invoice": None,
        "customer_invoice_template": None,
        "transaction_reference": None,
        "payments": {"url": url + "/payments"},
        "matched_transactions": {"url": url + "/matched_transactions"},
        "appendices": {"url": url + "/appendices"},
        "quote": None,
        "external_reference": f"ext-{invoice_id}",
        "e_invoicing": None,
        "archived_at": None,
        "created_at": _TS,
        "updated_at": _TS,
        "some_field_added_later": {"ignored": True},
    }
    data.update(overrides)
    return data


def changelog_json(record_id: int, processed_at: str, operation: str = "update") -> dict[str, Any]:
    return {
        "id": record_id,
        "operation": operation,
        "processed_at": processed_at,
        "updated_at": processed_at,
        "created_at": _TS,
    }


def page_json(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "has_more": next_cursor is not None, "next_cursor": next_cursor}


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class MockedClient:
    client: PennylaneClient
    token: str
    requests: list[httpx.Request] = field(default_factory=list)


def unique_token() -> str:
    return f"test-token-{next(_token_counter)}-s3cr3t"


@pytest.fixture
def make_client() -> Callable[..., MockedClient]:
    def build(handler: Handler, **kwargs: Any) -> MockedClient:
        token = unique_token()
        seen: list[httpx.Request] = []

        def recording(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        kwargs.setdefault("rate_limit", UNPACED)
        kwargs.setdefault("retry_policy", FAST_RETRIES)
        client = PennylaneClient(
            token,
            base_url="https://pennylane.test/api/external/v2",
            transport=httpx.MockTransport(recording),
            **kwargs,
        )
        return MockedClient(client, token, seen)

    return build


@dataclass(frozen=True)
class Payloads:
    line: Callable[..., dict[str, Any]] = line_json
    invoice: Callable[..., dict[str, Any]] = invoice_json
    changelog: Callable[..., dict[str, Any]] = changelog_json
    page: Callable[..., dict[str, Any]] = page_json


@pytest.fixture
def payloads() -> Payloads:
    return Payloads()
