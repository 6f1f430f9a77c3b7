"""Request bodies the client can send, shaped after the request schemas in `openapi.json`.

Unset optional fields are left out of the JSON (`to_json_body`). Amounts and prices are Decimals
sent as strings, as Pennylane asks; invoice-line `quantity` is the one number the spec types as a
JSON number."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer


def _decimal_as_json_number(value: Decimal) -> int | float:
    # The spec types line quantities as JSON numbers; this conversion happens only at the wire edge,
    # never in arithmetic. Integral quantities (the usual case) stay exact ints.
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _decimal_as_string(value: Decimal) -> str:
    # Plain notation: Pennylane rejects exponents such as "1E+1".
    return format(value, "f")


Quantity = Annotated[Decimal, PlainSerializer(_decimal_as_json_number, when_used="json")]
Amount = Annotated[Decimal, PlainSerializer(_decimal_as_string, when_used="json")]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Address(RequestBody):
    address: str
    postal_code: str
    city: str
    country_alpha2: str


class LedgerAccountNumber(RequestBody):
    """Customers and suppliers name their ledger account by number (e.g. "411000") on create."""

    number: str


class BodyDiscount(RequestBody):
    type: Literal["absolute", "relative"]
    value: Amount


# --- products ---------------------------------------------------------------------------------


class ProductCreate(RequestBody):
    label: str
    price_before_tax: Amount
    vat_rate: str
    description: str | None = None
    external_reference: str | None = None
    unit: str | None = None
    currency: str | None = None
    reference: str | None = None
    ledger_account_id: int | None = None


class ProductUpdate(RequestBody):
    label: str | None = None
    price_before_tax: Amount | None = None
    vat_rate: str | None = None
    description: str | None = None
    external_reference: str | None = None
    unit: str | None = None
    currency: str | None = None
    reference: str | None = None
    ledger_account_id: int | None = None


# --- customers --------------------------------------------------------------------------------


class _CustomerFields(RequestBody):
    phone: str | None = None
    delivery_address: Address | None = None
    payment_conditions: str | None = None
    billing_iban: str | None = None
    recipient: str | None = None
    reference: str | None = None
    notes: str | None = None
    emails: list[str] | None = None
    external_reference: str | None = None
    billing_language: Literal["fr_FR", "en_GB", "de_DE"] | None = None


class CompanyCustomerCreate(_CustomerFields):
    name: str
    billing_address: Address
    vat_number: str | None = None
    reg_no: str | None = None
    ledger_account: LedgerAccountNumber | None = None


class CompanyCustomerUpdate(_CustomerFields):
    name: str | None = None
    billing_address: Address | None = None
    vat_number: str | None = None
    reg_no: str | None = None


class IndividualCustomerCreate(_CustomerFields):
    first_name: str
    last_name: str
    billing_address: Address
    ledger_account: LedgerAccountNumber | None = None


class IndividualCustomerUpdate(_CustomerFields):
    first_name: str | None = None
    last_name: str | None = None
    billing_address: Address | None = None


# --- suppliers --------------------------------------------------------------------------------


class _SupplierFields(RequestBody):
    establishment_no: str | None = None
    reg_no: str | None = None
    postal_address: Address | None = None
    vat_number: str | None = None
    emails: list[str] | None = None
    iban: str | None = None
    supplier_payment_method: str | None = None
    supplier_due_date_delay: int | None = None
    supplier_due_date_rule: Literal["days", "days_or_end_of_month"] | None = None
    external_reference: str | None = None


class SupplierCreate(_SupplierFields):
    name: str
    ledger_account: LedgerAccountNumber | None = None


class SupplierUpdate(_SupplierFields):
    name: str | None = None


# --- customer invoices and credit notes -------------------------------------------------------


class ProductInvoiceLine(RequestBody):
    """A line naming a product: the product fills in label, price, unit, VAT and ledger account."""

    product_id: int
    quantity: Quantity
    label: str | None = None
    raw_currency_unit_price: Amount | None = None
    unit: str | None = None
    vat_rate: str | None = None
    ledger_account_id: int | None = None
    description: str | None = None
    section_rank: int | None = None
    discount: BodyDiscount | None = None


class FreeInvoiceLine(RequestBody):
    """A free-text line without a product."""

    label: str
    raw_currency_unit_price: Amount
    unit: str
    vat_rate: str
    quantity: Quantity
    ledger_account_id: int | None = None
    description: str | None = None
    section_rank: int | None = None
    discount: BodyDiscount | None = None


class CustomerInvoiceCreate(RequestBody):
    """A customer invoice, or a credit note when its amounts are negative.

    `draft=True` creates a draft (finalize it later); `draft=False` creates a finalized invoice.
    """

    date: dt.date
    deadline: dt.date
    customer_id: int
    invoice_lines: list[ProductInvoiceLine | FreeInvoiceLine]
    draft: bool
    external_reference: str | None = None
    label: str | None = None
    customer_invoice_template_id: int | None = None
    currency: str | None = None
    language: Literal["fr_FR", "en_GB", "de_DE"] | None = None
    special_mention: str | None = None
    pdf_invoice_free_text: str | None = None
    pdf_invoice_subject: str | None = None
    pdf_description: str | None = None
    discount: BodyDiscount | None = None


class LinkCreditNote(RequestBody):
    credit_note_id: int


# --- supplier invoice import -----------------------------------------------------------------


class SupplierInvoiceImportLine(RequestBody):
    """One amount per VAT rate (and ledger account); Pennylane has no product or quantity here."""

    currency_amount: Amount
    currency_tax: Amount
    vat_rate: str
    amount: Amount | None = None
    tax: Amount | None = None
    ledger_account_id: int | None = None


class SupplierInvoiceImport(RequestBody):
    """`POST /supplier_invoices/import`: needs an uploaded file attachment and a supplier."""

    file_attachment_id: int
    supplier_id: int
    date: dt.date
    deadline: dt.date
    currency_amount_before_tax: Amount
    currency_amount: Amount
    currency_tax: Amount
    invoice_lines: list[SupplierInvoiceImportLine]
    invoice_number: str | None = None
    currency: str | None = None
    amount: Amount | None = None
    tax: Amount | None = None
    label: str | None = None
    external_reference: str | None = None
    import_as_incomplete: bool | None = None
