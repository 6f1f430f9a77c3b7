"""Every JSON body the client sends validates against its request schema in openapi.json."""

import copy
import datetime as dt
import json
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from stockpit_pennylane.client.bodies import (
    Address,
    BodyDiscount,
    CompanyCustomerCreate,
    CompanyCustomerUpdate,
    CustomerInvoiceCreate,
    FreeInvoiceLine,
    IndividualCustomerCreate,
    IndividualCustomerUpdate,
    LedgerAccountNumber,
    ProductCreate,
    ProductInvoiceLine,
    ProductUpdate,
    SupplierCreate,
    SupplierInvoiceImport,
    SupplierInvoiceImportLine,
    SupplierUpdate,
)

SPEC_URI = "urn:openapi"


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` to JSON Schema null types."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False) is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _spec() -> dict[str, Any]:
    text = resources.files("pennylane_sandbox").joinpath("openapi.json").read_text("utf-8")
    return _nullable(copy.deepcopy(json.loads(text)))  # type: ignore[no-any-return]


def validate_request(method: str, path_template: str, body: Any) -> None:
    spec = _spec()
    operation = spec["paths"]["/api/external/v2" + path_template][method.lower()]
    assert "application/json" in operation["requestBody"]["content"]
    pointer = "/".join(
        p.replace("~", "~0").replace("/", "~1")
        for p in (
            "paths",
            "/api/external/v2" + path_template,
            method.lower(),
            "requestBody",
            "content",
            "application/json",
            "schema",
        )
    )
    registry = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT4)
    )
    validator = Draft4Validator(
        {"$ref": f"{SPEC_URI}#/{pointer}"}, registry=registry, format_checker=FormatChecker()
    )
    errors = sorted(validator.iter_errors(body), key=str)
    assert not errors, [e.message for e in errors]


ADDRESS = Address(
    address="1 rue de la Paix", postal_code="75002", city="Paris", country_alpha2="FR"
)
DISCOUNT = BodyDiscount(type="relative", value=Decimal("5"))
FULL_PRODUCT_LINE = ProductInvoiceLine(
    product_id=4,
    quantity=Decimal("2.5"),
    label="Chair",
    raw_currency_unit_price=Decimal("10.25"),
    unit="piece",
    vat_rate="FR_200",
    ledger_account_id=9,
    description="wooden",
    section_rank=1,
    discount=DISCOUNT,
)
FULL_FREE_LINE = FreeInvoiceLine(
    label="Delivery",
    raw_currency_unit_price=Decimal("-15.00"),
    unit="unit",
    vat_rate="FR_200",
    quantity=Decimal(1),
    ledger_account_id=9,
    description="by van",
    section_rank=1,
    discount=DISCOUNT,
)


def _invoice(draft: bool, **extra: Any) -> CustomerInvoiceCreate:
    return CustomerInvoiceCreate(
        date=dt.date(2026, 5, 1),
        deadline=dt.date(2026, 5, 31),
        customer_id=3,
        draft=draft,
        invoice_lines=[FULL_PRODUCT_LINE, FULL_FREE_LINE],
        **extra,
    )


FULL_IMPORT = SupplierInvoiceImport(
    file_attachment_id=1,
    supplier_id=2,
    date=dt.date(2026, 5, 1),
    deadline=dt.date(2026, 6, 1),
    currency_amount_before_tax=Decimal("100.00"),
    currency_amount=Decimal("120.00"),
    currency_tax=Decimal("20.00"),
    invoice_number="SUP-1",
    currency="EUR",
    amount=Decimal("120.00"),
    tax=Decimal("20.00"),
    label="Receipt 1",
    external_reference="rc-1",
    import_as_incomplete=False,
    invoice_lines=[
        SupplierInvoiceImportLine(
            currency_amount=Decimal("120.00"),
            currency_tax=Decimal("20.00"),
            vat_rate="FR_200",
            amount=Decimal("120.00"),
            tax=Decimal("20.00"),
            ledger_account_id=12,
        )
    ],
)

CUSTOMER_EXTRAS: dict[str, Any] = {
    "phone": "+33100000000",
    "delivery_address": ADDRESS,
    "payment_conditions": "30_days",
    "billing_iban": "FR7630006000011234567890189",
    "recipient": "Accounts",
    "reference": "C-1",
    "notes": "vip",
    "emails": ["a@example.com"],
    "external_reference": "cust-1",
    "billing_language": "fr_FR",
}
SUPPLIER_EXTRAS: dict[str, Any] = {
    "establishment_no": "12345678900011",
    "reg_no": "123456789",
    "postal_address": ADDRESS,
    "vat_number": "FR00123456789",
    "emails": ["s@example.com"],
    "iban": "FR76300060000112345",
    "supplier_payment_method": "manual_transfer",
    "supplier_due_date_delay": 30,
    "supplier_due_date_rule": "days",
    "external_reference": "sup-1",
}

# (client method, args, HTTP method, path template)
WRITES: list[tuple[str, tuple[Any, ...], str, str]] = [
    (
        "create_product",
        (ProductCreate(label="Chair", price_before_tax=Decimal("10"), vat_rate="FR_200"),),
        "POST",
        "/products",
    ),
    (
        "create_product",
        (
            ProductCreate(
                label="Chair",
                price_before_tax=Decimal("10.123456"),
                vat_rate="FR_200",
                description="d",
                external_reference="p-1",
                unit="piece",
                currency="EUR",
                reference="SKU-1",
                ledger_account_id=9,
            ),
        ),
        "POST",
        "/products",
    ),
    (
        "update_product",
        (5, ProductUpdate(label="Chair", reference="SKU-2", price_before_tax=Decimal("1E+1"))),
        "PUT",
        "/products/{id}",
    ),
    (
        "create_company_customer",
        (CompanyCustomerCreate(name="Acme", billing_address=ADDRESS),),
        "POST",
        "/company_customers",
    ),
    (
        "create_company_customer",
        (
            CompanyCustomerCreate(
                name="Acme",
                billing_address=ADDRESS,
                vat_number="FR1",
                reg_no="123",
                ledger_account=LedgerAccountNumber(number="411000"),
                **CUSTOMER_EXTRAS,
            ),
        ),
        "POST",
        "/company_customers",
    ),
    (
        "update_company_customer",
        (3, CompanyCustomerUpdate(name="Acme 2", emails=["b@x.fr"], billing_address=ADDRESS)),
        "PUT",
        "/company_customers/{id}",
    ),
    (
        "create_individual_customer",
        (
            IndividualCustomerCreate(
                first_name="Ada",
                last_name="Lovelace",
                billing_address=ADDRESS,
                ledger_account=LedgerAccountNumber(number="411000"),
                **CUSTOMER_EXTRAS,
            ),
        ),
        "POST",
        "/individual_customers",
    ),
    (
        "update_individual_customer",
        (3, IndividualCustomerUpdate(first_name="Ada", **CUSTOMER_EXTRAS)),
        "PUT",
        "/individual_customers/{id}",
    ),
    ("create_supplier", (SupplierCreate(name="Wood Ltd"),), "POST", "/suppliers"),
    (
        "create_supplier",
        (
            SupplierCreate(
                name="Wood Ltd",
                ledger_account=LedgerAccountNumber(number="401000"),
                **SUPPLIER_EXTRAS,
            ),
        ),
        "POST",
        "/suppliers",
    ),
    (
        "update_supplier",
        (2, SupplierUpdate(name="Wood SA", **SUPPLIER_EXTRAS)),
        "PUT",
        "/suppliers/{id}",
    ),
    ("create_customer_invoice", (_invoice(True),), "POST", "/customer_invoices"),
    (
        "create_customer_invoice",
        (
            _invoice(
                False,
                external_reference="inv-1",
                label="Order 1",
                customer_invoice_template_id=1,
                currency="EUR",
                language="fr_FR",
                special_mention="m",
                pdf_invoice_free_text="t",
                pdf_invoice_subject="s",
                pdf_description="d",
                discount=DISCOUNT,
            ),
        ),
        "POST",
        "/customer_invoices",
    ),
    ("link_credit_note", (1, 2), "POST", "/customer_invoices/{id}/link_credit_note"),
    ("import_supplier_invoice", (FULL_IMPORT,), "POST", "/supplier_invoices/import"),
]


@pytest.mark.parametrize(("method_name", "args", "http_method", "template"), WRITES)
async def test_sent_body_validates_against_request_schema(  # type: ignore[no-untyped-def]
    make_client, method_name: str, args: tuple[Any, ...], http_method: str, template: str
) -> None:
    sent: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        # The response is not under test: an error stops the call after the body was captured.
        return httpx.Response(404, json={"error": "Not Found", "status": 404})

    mocked = make_client(handler)
    with pytest.raises(Exception, match="Not Found"):
        await getattr(mocked.client, method_name)(*args)
    assert mocked.requests[0].method == http_method
    validate_request(http_method, template, sent[0])


def test_amounts_are_plain_strings_and_quantities_numbers() -> None:
    body = _invoice(True).to_json_body()
    assert body["invoice_lines"][0]["quantity"] == 2.5
    assert body["invoice_lines"][1]["quantity"] == 1
    assert body["invoice_lines"][1]["raw_currency_unit_price"] == "-15.00"
    assert ProductUpdate(price_before_tax=Decimal("1E+1")).to_json_body() == {
        "price_before_tax": "10"
    }


def test_validator_catches_a_bad_body() -> None:
    with pytest.raises(AssertionError):
        validate_request("POST", "/products", {"label": "x", "price_before_tax": 10})
