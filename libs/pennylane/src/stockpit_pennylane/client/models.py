"""Typed views of the Pennylane v2 resources this system reads.

Field names and optionality follow `openapi.json` (Pennylane "Accounting" v2, 2026-04-20): a field
the spec marks required-and-nullable is `X | None` with no default, so a missing key is a schema
breach we want to see. Only the fields the system uses are declared; unknown keys are ignored so
that Pennylane adding fields never breaks a reader. Enumerations that Pennylane extends over time
(status, vat_rate, currency…) are plain `str` for the same reason. Amounts and quantities are
`Decimal` (Pennylane sends them as strings)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class PennylaneModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


ItemT = TypeVar("ItemT")


class Page(PennylaneModel, Generic[ItemT]):
    """One page of a cursor-paginated list."""

    items: list[ItemT]
    # `has_more` is nullable on ledger_accounts (legacy page mode leaves it null).
    has_more: bool | None
    next_cursor: str | None


class IdRef(PennylaneModel):
    id: int


class LinkRef(PennylaneModel):
    id: int
    url: str


class UrlRef(PennylaneModel):
    url: str


class Discount(PennylaneModel):
    type: str
    value: Decimal


class NullableDiscount(PennylaneModel):
    """Commercial documents declare the discount value nullable."""

    type: str
    value: Decimal | None


class ImputationDates(PennylaneModel):
    start_date: dt.date
    end_date: dt.date


class TransactionReference(PennylaneModel):
    banking_provider: str
    provider_field_name: str
    provider_field_value: str


class EInvoicing(PennylaneModel):
    status: str
    reason: str | None


class Address(PennylaneModel):
    address: str
    postal_code: str
    city: str
    country_alpha2: str


# --- document lines -------------------------------------------------------------------------


class DocumentLine(PennylaneModel):
    """A line of a commercial document or quote (same shape, no imputation dates)."""

    id: int
    label: str
    unit: str | None
    quantity: Decimal
    amount: Decimal
    currency_amount: Decimal
    description: str
    product: LinkRef | None
    vat_rate: str
    currency_amount_before_tax: Decimal
    currency_tax: Decimal
    tax: Decimal
    raw_currency_unit_price: Decimal
    discount: Discount
    section_rank: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CustomerInvoiceLine(DocumentLine):
    imputation_dates: ImputationDates | None


class IncludedInvoiceLines(PennylaneModel):
    """`included.invoice_lines[<invoice id>]` of `GET /customer_invoices?include=invoice_lines`.

    Holds at most 20 lines; `has_more` says the rest must be read from the lines endpoint.
    """

    items: list[CustomerInvoiceLine]
    has_more: bool
    next_url: str | None


class CustomerInvoiceIncluded(PennylaneModel):
    invoice_lines: dict[str, IncludedInvoiceLines] = Field(default_factory=dict)


# --- customer invoices and credit notes -----------------------------------------------------


class CustomerInvoice(PennylaneModel):
    """A customer invoice or credit note (Pennylane serves both from `/customer_invoices`).

    A credit note has negative amounts and, once linked, a non-null `credited_invoice`.
    """

    id: int
    label: str | None
    invoice_number: str
    currency: str
    amount: Decimal
    currency_amount: Decimal
    currency_amount_before_tax: Decimal
    exchange_rate: Decimal
    date: dt.date | None
    deadline: dt.date | None
    currency_tax: Decimal
    tax: Decimal
    language: str
    paid: bool
    status: str
    discount: Discount
    ledger_entry: IdRef
    public_file_url: str | None
    filename: str | None
    remaining_amount_with_tax: Decimal | None
    remaining_amount_without_tax: Decimal | None
    draft: bool
    special_mention: str | None
    customer: LinkRef | None
    invoice_lines: UrlRef
    pdf_invoice_free_text: str
    pdf_invoice_subject: str
    pdf_description: str | None
    billing_subscription: IdRef | None
    credited_invoice: LinkRef | None
    customer_invoice_template: IdRef | None
    transaction_reference: TransactionReference | None
    quote: IdRef | None
    external_reference: str
    e_invoicing: EInvoicing | None
    archived_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class CustomerInvoiceWithLines:
    """An invoice with all of its lines, however many requests that took."""

    invoice: CustomerInvoice
    lines: tuple[CustomerInvoiceLine, ...]


class CustomerInvoicePage(Page[CustomerInvoice]):
    included: CustomerInvoiceIncluded | None = None


# --- commercial documents and quotes ----------------------------------------------------------


class CommercialDocument(PennylaneModel):
    """A proforma, shipping order (bon de livraison) or purchasing order (bon de commande)."""

    id: int
    label: str | None
    document_number: str
    document_type: str
    currency: str
    amount: Decimal
    currency_amount: Decimal
    currency_amount_before_tax: Decimal
    exchange_rate: Decimal
    date: dt.date | None
    deadline: dt.date | None
    currency_tax: Decimal
    tax: Decimal
    language: str
    discount: NullableDiscount
    public_file_url: str | None
    filename: str | None
    special_mention: str | None
    customer: LinkRef | None
    invoice_lines: UrlRef
    quote: LinkRef | None
    pdf_invoice_free_text: str
    pdf_invoice_subject: str
    pdf_description: str | None
    commercial_document_template: IdRef | None
    external_reference: str
    archived_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class Quote(PennylaneModel):
    id: int
    label: str | None
    quote_number: str
    currency: str
    amount: Decimal
    currency_amount: Decimal
    currency_amount_before_tax: Decimal
    exchange_rate: Decimal
    date: dt.date | None
    deadline: dt.date | None
    currency_tax: Decimal
    tax: Decimal
    language: str
    status: str
    discount: Discount
    public_file_url: str | None
    filename: str | None
    special_mention: str | None
    customer: LinkRef | None
    invoice_lines: UrlRef
    linked_invoices: UrlRef
    pdf_invoice_free_text: str
    pdf_invoice_subject: str
    pdf_description: str | None
    quote_template: IdRef | None
    external_reference: str
    archived_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


# --- products and ledger accounts -------------------------------------------------------------


class Product(PennylaneModel):
    id: int
    label: str
    description: str
    external_reference: str
    price_before_tax: Decimal
    vat_rate: str
    # Undocumented by Pennylane (its example does not match the VAT rate): do not rely on it.
    price: Decimal
    unit: str
    currency: str
    reference: str | None
    # Only the id: resolve the account number (e.g. 706000) with `get_ledger_account`.
    ledger_account: IdRef | None
    archived_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class LedgerAccount(PennylaneModel):
    id: int
    number: str
    label: str
    vat_rate: str
    country_alpha2: str
    enabled: bool
    type: str
    letterable: bool
    created_at: dt.datetime
    updated_at: dt.datetime


# --- customers and suppliers ------------------------------------------------------------------


class _CustomerBase(PennylaneModel):
    id: int
    name: str
    billing_iban: str | None
    payment_conditions: str
    recipient: str
    phone: str
    reference: str | None
    notes: str | None
    ledger_account: IdRef | None
    emails: list[str]
    billing_address: Address
    delivery_address: Address
    external_reference: str
    billing_language: str
    created_at: dt.datetime
    updated_at: dt.datetime


class CompanyCustomer(_CustomerBase):
    customer_type: Literal["company"]
    vat_number: str
    reg_no: str


class IndividualCustomer(_CustomerBase):
    customer_type: Literal["individual"]
    first_name: str
    last_name: str


Customer = Annotated[CompanyCustomer | IndividualCustomer, Field(discriminator="customer_type")]


class Supplier(PennylaneModel):
    id: int
    name: str
    establishment_no: str | None
    reg_no: str | None
    vat_number: str
    ledger_account: IdRef | None
    emails: list[str]
    iban: str
    postal_address: Address
    supplier_payment_method: str | None
    supplier_due_date_delay: int | None
    supplier_due_date_rule: str | None
    external_reference: str
    created_at: dt.datetime
    updated_at: dt.datetime


# --- supplier invoices and file attachments ---------------------------------------------------


class SupplierInvoice(PennylaneModel):
    id: int
    label: str | None
    invoice_number: str
    currency: str
    amount: Decimal
    currency_amount: Decimal
    currency_amount_before_tax: Decimal
    exchange_rate: Decimal
    date: dt.date | None
    deadline: dt.date | None
    currency_tax: Decimal
    tax: Decimal
    reconciled: bool
    accounting_status: str
    filename: str | None
    public_file_url: str | None
    remaining_amount_with_tax: Decimal | None
    remaining_amount_without_tax: Decimal | None
    ledger_entry: IdRef
    supplier: LinkRef | None
    invoice_lines: UrlRef
    transaction_reference: TransactionReference | None
    payment_status: str
    external_reference: str
    e_invoicing: EInvoicing | None
    archived_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SupplierInvoiceLine(PennylaneModel):
    """Supplier invoice lines carry amounts per VAT rate only: no product, quantity or price."""

    id: int
    label: str
    amount: Decimal
    currency_amount: Decimal
    description: str
    vat_rate: str
    currency_amount_before_tax: Decimal
    currency_tax: Decimal
    tax: Decimal
    imputation_dates: ImputationDates | None
    created_at: dt.datetime
    updated_at: dt.datetime


class FileAttachment(PennylaneModel):
    id: int
    url: str
    filename: str
    created_at: dt.datetime
    updated_at: dt.datetime


# --- changelogs and identity ------------------------------------------------------------------


class ChangelogEvent(PennylaneModel):
    """One change of one record. `id` is the changed record's id, not an event id."""

    id: int
    operation: Literal["insert", "update", "delete"]
    # When the event entered Pennylane's changelog pipeline: the watermark to persist.
    processed_at: dt.datetime
    updated_at: dt.datetime
    created_at: dt.datetime


class MeUser(PennylaneModel):
    id: int
    first_name: str
    last_name: str
    email: str
    locale: str


class MeCompany(PennylaneModel):
    id: int
    name: str
    # `sandbox-<id>` on a Pennylane sandbox company.
    reg_no: str


class Me(PennylaneModel):
    user: MeUser | None
    company: MeCompany
    scopes: list[str]
