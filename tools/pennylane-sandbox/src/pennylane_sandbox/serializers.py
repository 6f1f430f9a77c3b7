"""Records rendered field for field as Pennylane's API v2 returns them (see openapi.json)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from .money import format_amount, format_plain, round_cents, vat_fraction
from .store import (
    Address,
    ChangeEvent,
    Company,
    Customer,
    Discount,
    FileAttachment,
    LedgerAccount,
    Line,
    Product,
    SalesDocument,
    Supplier,
    SupplierInvoice,
    SupplierInvoiceLine,
)

JSON = dict[str, Any]
NO_DISCOUNT = {"type": "relative", "value": "0"}


@lru_cache(maxsize=8192)
def timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def optional_timestamp(moment: dt.datetime | None) -> str | None:
    return None if moment is None else timestamp(moment)


def _discount(discount: Discount | None) -> JSON:
    if discount is None:
        return dict(NO_DISCOUNT)
    return {"type": discount.kind, "value": format_plain(discount.value)}


def _address(address: Address) -> JSON:
    return {
        "address": address.address,
        "postal_code": address.postal_code,
        "city": address.city,
        "country_alpha2": address.country_alpha2,
    }


class Serializer:
    """Builds response bodies; `api` is the public base URL, e.g. http://127.0.0.1:8910/api/external/v2."""

    def __init__(self, api: str) -> None:
        self.api = api

    def _ref(self, resource: str, record_id: int) -> JSON:
        return {"id": record_id, "url": f"{self.api}/{resource}/{record_id}"}

    def _sub(self, resource: str, record_id: int, sub: str) -> JSON:
        return {"url": f"{self.api}/{resource}/{record_id}/{sub}"}

    def line(self, line: Line, *, with_imputation_dates: bool) -> JSON:
        total = format_amount(line.total)
        currency_tax = format_amount(line.tax)
        body: JSON = {
            "id": line.id,
            "label": line.label,
            "unit": line.unit,
            "quantity": format_plain(line.quantity),
            "amount": total,
            "currency_amount": total,
            "description": line.description,
            "product": None if line.product_id is None else self._ref("products", line.product_id),
            "vat_rate": line.vat_rate,
            "currency_amount_before_tax": format_amount(line.before_tax),
            "currency_tax": currency_tax,
            "tax": currency_tax,
            "raw_currency_unit_price": format_plain(line.unit_price),
            "discount": _discount(line.discount),
            "section_rank": line.section_rank,
            "created_at": timestamp(line.created_at),
            "updated_at": timestamp(line.updated_at),
        }
        if with_imputation_dates:
            dates = line.imputation_dates
            body["imputation_dates"] = (
                None
                if dates is None
                else {"start_date": dates[0].isoformat(), "end_date": dates[1].isoformat()}
            )
        return body

    def _document_amounts(self, document: SalesDocument) -> JSON:
        before_tax, tax = document.totals()
        total = format_amount(before_tax + tax)
        return {
            "currency": document.currency,
            "amount": total,
            "currency_amount": total,
            "currency_amount_before_tax": format_amount(before_tax),
            "exchange_rate": "1.0",
            "date": document.date.isoformat(),
            "deadline": document.deadline.isoformat(),
            "currency_tax": format_amount(tax),
            "tax": format_amount(tax),
            "language": document.language,
        }

    def customer_invoice(self, invoice: SalesDocument, today: dt.date) -> JSON:
        resource = "customer_invoices"
        before_tax, tax = invoice.totals()
        remaining = None if invoice.draft else format_amount(before_tax + tax)
        remaining_before_tax = None if invoice.draft else format_amount(before_tax)
        if invoice.draft:
            status = "draft"
        elif before_tax + tax < 0:
            status = "credit_note"
        else:
            status = "late" if invoice.deadline < today else "upcoming"
        return {
            "id": invoice.id,
            "label": invoice.label,
            "invoice_number": invoice.number,
            **self._document_amounts(invoice),
            "paid": False,
            "status": status,
            "discount": _discount(invoice.discount),
            "ledger_entry": {"id": invoice.id},
            "public_file_url": None if invoice.draft else f"{self.api}/_files/{invoice.id}.pdf",
            "filename": None if invoice.draft else f"{invoice.number}.pdf",
            "remaining_amount_with_tax": remaining,
            "remaining_amount_without_tax": remaining_before_tax,
            "draft": invoice.draft,
            "special_mention": invoice.special_mention,
            "customer": self._ref("customers", invoice.customer_id),
            "invoice_line_sections": self._sub(resource, invoice.id, "invoice_line_sections"),
            "invoice_lines": self._sub(resource, invoice.id, "invoice_lines"),
            "custom_header_fields": self._sub(resource, invoice.id, "custom_header_fields"),
            "categories": self._sub(resource, invoice.id, "categories"),
            "pdf_invoice_free_text": invoice.pdf_invoice_free_text,
            "pdf_invoice_subject": invoice.pdf_invoice_subject,
            "pdf_description": invoice.pdf_description,
            "billing_subscription": None,
            "credited_invoice": (
                None
                if invoice.credited_invoice_id is None
                else self._ref(resource, invoice.credited_invoice_id)
            ),
            "customer_invoice_template": (
                None if invoice.template_id is None else {"id": invoice.template_id}
            ),
            "transaction_reference": invoice.transaction_reference,
            "payments": self._sub(resource, invoice.id, "payments"),
            "matched_transactions": self._sub(resource, invoice.id, "matched_transactions"),
            "appendices": self._sub(resource, invoice.id, "appendices"),
            "quote": None if invoice.quote_id is None else {"id": invoice.quote_id},
            "external_reference": invoice.external_reference,
            "e_invoicing": None,
            "archived_at": optional_timestamp(invoice.archived_at),
            "created_at": timestamp(invoice.created_at),
            "updated_at": timestamp(invoice.updated_at),
        }

    def quote(self, quote: SalesDocument) -> JSON:
        resource = "quotes"
        return {
            "id": quote.id,
            "label": quote.label,
            "quote_number": quote.number,
            **self._document_amounts(quote),
            "status": quote.quote_status,
            "discount": _discount(quote.discount),
            "public_file_url": None,
            "filename": None,
            "special_mention": quote.special_mention,
            "customer": self._ref("customers", quote.customer_id),
            "invoice_line_sections": self._sub(resource, quote.id, "invoice_line_sections"),
            "invoice_lines": self._sub(resource, quote.id, "invoice_lines"),
            "linked_invoices": self._sub(resource, quote.id, "linked_invoices"),
            "pdf_invoice_free_text": quote.pdf_invoice_free_text,
            "pdf_invoice_subject": quote.pdf_invoice_subject,
            "pdf_description": quote.pdf_description,
            "quote_template": None if quote.template_id is None else {"id": quote.template_id},
            "appendices": self._sub(resource, quote.id, "appendices"),
            "external_reference": quote.external_reference,
            "archived_at": optional_timestamp(quote.archived_at),
            "created_at": timestamp(quote.created_at),
            "updated_at": timestamp(quote.updated_at),
        }

    def commercial_document(self, document: SalesDocument) -> JSON:
        resource = "commercial_documents"
        return {
            "id": document.id,
            "label": document.label,
            "document_number": document.number,
            "document_type": document.document_type,
            **self._document_amounts(document),
            "discount": _discount(document.discount),
            "public_file_url": None,
            "filename": None,
            "special_mention": document.special_mention,
            "customer": self._ref("customers", document.customer_id),
            "invoice_line_sections": self._sub(resource, document.id, "invoice_line_sections"),
            "invoice_lines": self._sub(resource, document.id, "invoice_lines"),
            "quote": None if document.quote_id is None else self._ref("quotes", document.quote_id),
            "pdf_invoice_free_text": document.pdf_invoice_free_text,
            "pdf_invoice_subject": document.pdf_invoice_subject,
            "pdf_description": document.pdf_description,
            "commercial_document_template": (
                None if document.template_id is None else {"id": document.template_id}
            ),
            "appendices": self._sub(resource, document.id, "appendices"),
            "external_reference": document.external_reference,
            "archived_at": optional_timestamp(document.archived_at),
            "created_at": timestamp(document.created_at),
            "updated_at": timestamp(document.updated_at),
        }

    def product(self, product: Product) -> JSON:
        price = round_cents(product.price_before_tax * (1 + vat_fraction(product.vat_rate)))
        return {
            "id": product.id,
            "label": product.label,
            "description": product.description,
            "external_reference": product.external_reference,
            "price_before_tax": format_plain(product.price_before_tax),
            "vat_rate": product.vat_rate,
            "price": format_plain(price),
            "unit": product.unit,
            "currency": product.currency,
            "reference": product.reference,
            "ledger_account": (
                None if product.ledger_account_id is None else {"id": product.ledger_account_id}
            ),
            "archived_at": optional_timestamp(product.archived_at),
            "created_at": timestamp(product.created_at),
            "updated_at": timestamp(product.updated_at),
        }

    def ledger_account(self, account: LedgerAccount) -> JSON:
        return {
            "id": account.id,
            "number": account.number,
            "label": account.label,
            "vat_rate": account.vat_rate,
            "country_alpha2": account.country_alpha2,
            "enabled": account.enabled,
            "type": account.type,
            "letterable": account.letterable,
            "created_at": timestamp(account.created_at),
            "updated_at": timestamp(account.updated_at),
        }

    def customer(self, customer: Customer, *, with_type: bool) -> JSON:
        """`with_type` adds `customer_type`, which only `/customers` returns."""
        body: JSON = {
            "id": customer.id,
            "name": customer.name,
            "billing_iban": customer.billing_iban,
            "payment_conditions": customer.payment_conditions,
            "recipient": customer.recipient,
            "phone": customer.phone,
            "reference": customer.reference,
            "notes": customer.notes,
        }
        if customer.customer_type == "company":
            body["vat_number"] = customer.vat_number
            body["reg_no"] = customer.reg_no
        else:
            body["first_name"] = customer.first_name
            body["last_name"] = customer.last_name
        body.update(
            {
                "ledger_account": (
                    None
                    if customer.ledger_account_id is None
                    else {"id": customer.ledger_account_id}
                ),
                "emails": list(customer.emails),
                "billing_address": _address(customer.billing_address),
                "delivery_address": _address(customer.delivery_address),
                "created_at": timestamp(customer.created_at),
                "updated_at": timestamp(customer.updated_at),
                "external_reference": customer.external_reference,
                "billing_language": customer.billing_language,
                "mandates": self._sub("customers", customer.id, "mandates"),
                "pro_account_mandates": self._sub("customers", customer.id, "pro_account_mandates"),
                "contacts": self._sub("customers", customer.id, "contacts"),
            }
        )
        if with_type:
            body["customer_type"] = customer.customer_type
        return body

    def supplier(self, supplier: Supplier) -> JSON:
        return {
            "id": supplier.id,
            "name": supplier.name,
            "establishment_no": supplier.establishment_no,
            "reg_no": supplier.reg_no,
            "vat_number": supplier.vat_number,
            "ledger_account": (
                None if supplier.ledger_account_id is None else {"id": supplier.ledger_account_id}
            ),
            "emails": list(supplier.emails),
            "iban": supplier.iban,
            "postal_address": _address(supplier.postal_address),
            "supplier_payment_method": supplier.supplier_payment_method,
            "supplier_due_date_delay": supplier.supplier_due_date_delay,
            "supplier_due_date_rule": supplier.supplier_due_date_rule,
            "external_reference": supplier.external_reference,
            "created_at": timestamp(supplier.created_at),
            "updated_at": timestamp(supplier.updated_at),
        }

    def file_attachment(self, attachment: FileAttachment, files_base: str) -> JSON:
        return {
            "id": attachment.id,
            "url": f"{files_base}/{attachment.id}",
            "filename": attachment.filename,
            "created_at": timestamp(attachment.created_at),
            "updated_at": timestamp(attachment.updated_at),
        }

    def supplier_invoice(self, invoice: SupplierInvoice) -> JSON:
        resource = "supplier_invoices"
        return {
            "id": invoice.id,
            "label": invoice.label,
            "invoice_number": invoice.invoice_number,
            "currency": invoice.currency,
            "amount": format_amount(invoice.amount),
            "currency_amount": format_amount(invoice.currency_amount),
            "currency_amount_before_tax": format_amount(invoice.currency_amount_before_tax),
            "exchange_rate": "1.0",
            "date": invoice.date.isoformat(),
            "deadline": invoice.deadline.isoformat(),
            "currency_tax": format_amount(invoice.currency_tax),
            "tax": format_amount(invoice.tax),
            "reconciled": False,
            "accounting_status": invoice.accounting_status,
            "filename": None,
            "public_file_url": None,
            "remaining_amount_with_tax": format_amount(invoice.currency_amount),
            "remaining_amount_without_tax": format_amount(invoice.currency_amount_before_tax),
            "ledger_entry": {"id": invoice.id},
            "supplier": self._ref("suppliers", invoice.supplier_id),
            "invoice_lines": self._sub(resource, invoice.id, "invoice_lines"),
            "categories": self._sub(resource, invoice.id, "categories"),
            "transaction_reference": invoice.transaction_reference,
            "payment_status": invoice.payment_status,
            "payments": self._sub(resource, invoice.id, "payments"),
            "matched_transactions": self._sub(resource, invoice.id, "matched_transactions"),
            "external_reference": invoice.external_reference,
            "e_invoicing": None,
            "archived_at": optional_timestamp(invoice.archived_at),
            "created_at": timestamp(invoice.created_at),
            "updated_at": timestamp(invoice.updated_at),
        }

    def supplier_invoice_line(self, line: SupplierInvoiceLine) -> JSON:
        dates = line.imputation_dates
        return {
            "id": line.id,
            "label": line.label,
            "amount": format_amount(line.amount),
            "currency_amount": format_amount(line.currency_amount),
            "description": line.description,
            "vat_rate": line.vat_rate,
            "currency_amount_before_tax": format_amount(line.currency_amount - line.currency_tax),
            "currency_tax": format_amount(line.currency_tax),
            "tax": format_amount(line.tax),
            "imputation_dates": (
                None
                if dates is None
                else {"start_date": dates[0].isoformat(), "end_date": dates[1].isoformat()}
            ),
            "created_at": timestamp(line.created_at),
            "updated_at": timestamp(line.updated_at),
        }

    @staticmethod
    def change_event(event: ChangeEvent) -> JSON:
        return {
            "id": event.record_id,
            "operation": event.operation,
            "processed_at": timestamp(event.processed_at),
            "updated_at": timestamp(event.updated_at),
            "created_at": timestamp(event.created_at),
        }

    @staticmethod
    def me(company: Company, scopes: list[str]) -> JSON:
        return {
            "user": {
                "id": 50_000_000 + company.id,
                "first_name": "Sandbox",
                "last_name": "User",
                "email": f"sandbox-{company.id}@example.com",
                "locale": "fr",
            },
            "company": {"id": company.id, "name": company.name, "reg_no": f"sandbox-{company.id}"},
            "scopes": scopes,
        }
