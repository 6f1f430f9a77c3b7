"""The writes themselves: each one looks before it creates, and can be run again at any point.

Every flow is safe to restart from the top after any failure or crash:
- updates read the record first and write only what differs and Stockpit changed last
  (`outbound.domain.last_change`), so a repeat changes nothing;
- creates look the record up by its deterministic `external_reference` first, and the lookup is
  the first thing the next attempt does after an ambiguous failure (the client raises
  `AmbiguousWriteError` instead of resending a POST that may have been applied);
- a receipt's intermediate results (supplier id, uploaded file id) are checkpointed, and the
  supplier invoice is imported with the checkpointed file: Pennylane refuses a second import of
  the same file (409), so even a late-landing duplicate request cannot create a second invoice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from stockpit_contracts.payloads.outbound import (
    CustomerWriteRequested,
    ProductChangeRequested,
    ReceiptSendRequested,
)
from stockpit_pennylane.client import (
    AmbiguousWriteError,
    Conflict,
    Filter,
    Forbidden,
    NotFound,
    PennylaneClient,
    PennylaneError,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
)
from stockpit_pennylane.client.bodies import (
    Address,
    CompanyCustomerCreate,
    CompanyCustomerUpdate,
    IndividualCustomerCreate,
    IndividualCustomerUpdate,
    ProductUpdate,
    RequestBody,
    SupplierCreate,
    SupplierInvoiceImport,
    SupplierInvoiceImportLine,
)
from stockpit_pennylane.client.models import CompanyCustomer, IndividualCustomer, Supplier

from outbound.adapters.receipt_pdf import ReceiptDocument, render_receipt_pdf
from outbound.domain.customers import (
    BillingAddress,
    CustomerFacts,
    creation_problems,
    individual_name_parts,
    renamed_individual,
)
from outbound.domain.last_change import Seen, Verdict, WrittenState, decide, last_seen
from outbound.domain.references import (
    external_reference,
    normalized_supplier_name,
    supplier_reference,
)
from outbound.domain.vat import UnsupportedVatRate, invoice_amounts
from outbound.domain.writes import (
    Done,
    Failed,
    Outcome,
    PennylaneExchange,
    PennylaneWon,
    RetryLater,
    TokenRefused,
)
from outbound.service_layer.ports import Checkpoint

OutboundRequest = ProductChangeRequested | CustomerWriteRequested | ReceiptSendRequested

# 429 still seen after the client's own waits: wait at least this long before the next attempt.
_RATE_LIMITED_FLOOR_S = 5.0


class PennylaneWriter:
    """Runs one write for one tenant, and says what came of it (never raises PennylaneError)."""

    def __init__(
        self,
        client: PennylaneClient,
        tenant_id: str,
        *,
        progress: Mapping[str, Any],
        checkpoint: Checkpoint,
        supplier_invoice_deadline_days: int = 30,
        last_write: WrittenState | None = None,
    ) -> None:
        self._client = client
        self._tenant = tenant_id
        self._progress = dict(progress)
        self._checkpoint = checkpoint
        self._deadline_days = supplier_invoice_deadline_days
        self._request: dict[str, Any] | None = None
        self._last_write = last_write

    async def write(self, request: OutboundRequest) -> Outcome:
        try:
            if isinstance(request, ProductChangeRequested):
                return await self._product(request)
            if isinstance(request, CustomerWriteRequested):
                return await self._customer(request)
            return await self._receipt(request)
        except PennylaneError as error:
            return self._classify(error)

    # --- plumbing ---------------------------------------------------------------------------

    def _about(self, method: str, path: str, body: RequestBody | None = None) -> None:
        """Names the request about to be sent, for the dead letter should it fail."""
        self._request = {"method": method, "path": path}
        if body is not None:
            self._request["body"] = body.to_json_body()

    def _exchange(self, error: PennylaneError | None = None) -> PennylaneExchange:
        response = None
        if error is not None:
            response = {
                "status": error.status,
                "error": error.message,
                "code": error.code,
                "field": error.field,
                "details": error.details,
            }
        return PennylaneExchange(request=self._request, response=response)

    def _classify(self, error: PennylaneError) -> Outcome:
        reason = str(error)
        if isinstance(error, AmbiguousWriteError):
            return RetryLater(reason, ambiguous=True, exchange=self._exchange(error))
        if isinstance(error, RateLimited):
            wait = max(error.retry_after or 0.0, _RATE_LIMITED_FLOOR_S)
            return RetryLater(reason, at_least_s=wait, exchange=self._exchange(error))
        if isinstance(error, ServerError | TransportError):
            # A PUT that timed out may still land: the next attempt waits for it, then reads.
            sent_a_write = self._request is not None and self._request["method"] != "GET"
            return RetryLater(reason, ambiguous=sent_a_write, exchange=self._exchange(error))
        if isinstance(error, Unauthorized | Forbidden):
            return TokenRefused(
                f"Pennylane refused the tenant's token ({reason}); the tenant's writes wait "
                "until it is connected with a new token",
                exchange=self._exchange(error),
            )
        return Failed(reason, retryable=False, exchange=self._exchange(error))

    async def _save(self, **values: Any) -> None:
        self._progress.update(values)
        await self._checkpoint(self._progress)

    # --- products ---------------------------------------------------------------------------

    def _ours(self, pennylane_id: int) -> Seen | None:
        """What our last write left in this Pennylane record, if it was about this record."""
        last = self._last_write
        return last.seen if last is not None and last.pennylane_id == pennylane_id else None

    async def _product(self, change: ProductChangeRequested) -> Outcome:
        product_id = change.pennylane_product_id
        self._about("GET", f"products/{product_id}")
        try:
            product = await self._client.get_product(product_id)
        except NotFound as error:
            return Failed(
                f"the linked Pennylane product {product_id} does not exist (any more)",
                retryable=False,
                exchange=self._exchange(error),
            )
        base = (
            Seen(
                {"label": change.pennylane_label, "reference": change.pennylane_reference},
                change.pennylane_updated_at,
            )
            if change.pennylane_label is not None
            else None
        )
        seen = last_seen(base, self._ours(product.id))
        current = {"label": product.label, "reference": product.reference or None}
        wanted: dict[str, str | None] = {"label": change.label, "reference": change.reference}
        if base is None and change.reference is None:
            # A request that says nothing of what Stockpit saw (an older inventory's) cannot
            # tell a removed SKU from one never set: the reference is left alone.
            del wanted["reference"]
        verdicts = {
            name: decide(
                name,
                value,
                current[name],
                seen,
                changed_at=change.changed_at,
                updated_at=product.updated_at,
            )
            for name, value in wanted.items()
        }
        writes = {name for name, verdict in verdicts.items() if verdict is Verdict.WRITE}
        # PUT takes a reference as a string only (openapi.json): it cannot be cleared.
        cannot_clear = "reference" in writes and change.reference is None
        if cannot_clear:
            writes.discard("reference")
        if writes:
            body = ProductUpdate(
                label=change.label if "label" in writes else None,
                reference=change.reference if "reference" in writes else None,
            )
            self._about("PUT", f"products/{product_id}", body)
            product = await self._client.update_product(product_id, body)
        if cannot_clear:
            written = " (its new label was written)" if writes else ""
            return Failed(
                f"the SKU was removed in Stockpit, but Pennylane's API cannot clear a product's "
                f"reference: Pennylane product {product_id} keeps {product.reference!r}"
                f"{written}; remove it in Pennylane",
                retryable=False,
                exchange=self._exchange(),
            )
        if not writes and Verdict.KEEP in verdicts.values():
            return PennylaneWon(product.id, _pennylane_won(verdicts, product.updated_at, change))
        state = Seen(
            {"label": product.label, "reference": product.reference or None}, product.updated_at
        )
        return Done(product.id, WrittenState(product.id, state))

    # --- customers --------------------------------------------------------------------------

    async def _customer(self, change: CustomerWriteRequested) -> Outcome:
        facts = _customer_facts(change)
        if change.pennylane_customer_id is not None:
            self._about("GET", f"customers/{change.pennylane_customer_id}")
            try:
                linked = await self._client.get_customer(change.pennylane_customer_id)
            except NotFound as error:
                return Failed(
                    f"the linked Pennylane customer {change.pennylane_customer_id} does not exist",
                    retryable=False,
                    exchange=self._exchange(error),
                )
            return await self._update_customer(linked, facts, change)

        reference = external_reference(self._tenant, "customer", change.customer_id)
        existing = await self._find_customer(reference)
        if existing is not None:
            # Created by an earlier attempt (or a later change arrived before the link did).
            return await self._update_customer(existing, facts, change)
        problems = creation_problems(facts)
        if problems:
            return Failed(
                "cannot create the customer in Pennylane: " + "; ".join(problems),
                retryable=False,
                exchange=PennylaneExchange(request={"customer": change.model_dump(mode="json")}),
            )
        try:
            created = await self._create_customer(facts, reference)
        except Conflict:
            # Taken by a create of ours that landed after all: it is the one we want.
            existing = await self._find_customer(reference)
            if existing is None:
                raise
            return await self._update_customer(existing, facts, change)
        return Done(created.id, _customer_state(created))

    async def _find_customer(self, reference: str) -> CompanyCustomer | IndividualCustomer | None:
        self._about("GET", "customers?filter=external_reference eq " + reference)
        return await self._client.find_customer_by_external_reference(reference)

    async def _create_customer(
        self, facts: CustomerFacts, reference: str
    ) -> CompanyCustomer | IndividualCustomer:
        assert facts.billing_address is not None, "checked by creation_problems"
        address = Address(
            address=facts.billing_address.address,
            postal_code=facts.billing_address.postal_code,
            city=facts.billing_address.city,
            country_alpha2=facts.billing_address.country_alpha2.upper(),
        )
        emails = list(facts.emails) or None
        if facts.kind == "company":
            company = CompanyCustomerCreate(
                name=facts.name.strip(),
                billing_address=address,
                emails=emails,
                external_reference=reference,
            )
            self._about("POST", "company_customers", company)
            return await self._client.create_company_customer(company)
        first, last = individual_name_parts(facts)
        assert first, "checked by creation_problems"
        assert last, "checked by creation_problems"
        individual = IndividualCustomerCreate(
            first_name=first.strip(),
            last_name=last.strip(),
            billing_address=address,
            emails=emails,
            external_reference=reference,
        )
        self._about("POST", "individual_customers", individual)
        return await self._client.create_individual_customer(individual)

    async def _update_customer(
        self,
        current: CompanyCustomer | IndividualCustomer,
        facts: CustomerFacts,
        change: CustomerWriteRequested,
    ) -> Outcome:
        """Write the name and e-mails Stockpit changed last; the linked record keeps its kind.

        An individual keeps Pennylane's first and last names unless the name itself changed.
        """
        base_fields: dict[str, Any] = {}
        if change.pennylane_name is not None:
            base_fields["name"] = change.pennylane_name
        if change.pennylane_emails is not None:
            base_fields["emails"] = list(change.pennylane_emails)
        base = Seen(base_fields, change.pennylane_updated_at) if base_fields else None
        seen = last_seen(base, self._ours(current.id))
        wanted_name = facts.name.strip() or current.name
        wanted: dict[str, Any] = {"name": wanted_name, "emails": list(facts.emails)}
        verdicts = {
            name: decide(
                name,
                value,
                getattr(current, name),
                seen,
                changed_at=change.changed_at,
                updated_at=current.updated_at,
            )
            for name, value in wanted.items()
        }
        writes = {name for name, verdict in verdicts.items() if verdict is Verdict.WRITE}
        if not writes:
            if Verdict.KEEP in verdicts.values():
                return PennylaneWon(
                    current.id, _pennylane_won(verdicts, current.updated_at, change)
                )
            return Done(current.id, _customer_state(current))
        emails = wanted["emails"] if "emails" in writes else None
        updated: CompanyCustomer | IndividualCustomer
        if isinstance(current, CompanyCustomer):
            company = CompanyCustomerUpdate(
                name=wanted_name if "name" in writes else None, emails=emails
            )
            self._about("PUT", f"company_customers/{current.id}", company)
            updated = await self._client.update_company_customer(current.id, company)
        else:
            first, last = (
                renamed_individual(wanted_name, current.first_name, current.last_name)
                if "name" in writes
                else (None, None)
            )
            individual = IndividualCustomerUpdate(first_name=first, last_name=last, emails=emails)
            self._about("PUT", f"individual_customers/{current.id}", individual)
            updated = await self._client.update_individual_customer(current.id, individual)
        return Done(updated.id, _customer_state(updated))

    # --- receipts as supplier invoices ------------------------------------------------------

    async def _receipt(self, receipt: ReceiptSendRequested) -> Outcome:
        reference = external_reference(self._tenant, "receipt", receipt.receipt_id)
        self._about("GET", "supplier_invoices?filter=external_reference eq " + reference)
        existing = await self._client.find_supplier_invoice_by_external_reference(reference)
        if existing is not None:
            return Done(existing.id)
        try:
            amounts = invoice_amounts(receipt.lines)
        except UnsupportedVatRate as error:
            return Failed(
                f"cannot send the receipt: {error}",
                retryable=False,
                exchange=PennylaneExchange(request={"receipt": receipt.model_dump(mode="json")}),
            )

        supplier_id = self._progress.get("supplier_id")
        if supplier_id is None:
            supplier_id = (await self._find_or_create_supplier(receipt.supplier_name)).id
            await self._save(supplier_id=supplier_id)

        attachment_id = self._progress.get("file_attachment_id")
        if attachment_id is None:
            document = ReceiptDocument(
                tenant_id=self._tenant,
                receipt_id=receipt.receipt_id,
                purchase_id=receipt.purchase_id,
                supplier_name=receipt.supplier_name,
                received_on=receipt.received_on,
                currency=receipt.currency,
                lines=receipt.lines,
                amounts=amounts,
            )
            filename = f"stockpit-receipt-{receipt.receipt_id}.pdf"
            self._request = {"method": "POST", "path": "file_attachments", "filename": filename}
            attachment = await self._client.upload_file_attachment(
                render_receipt_pdf(document), filename
            )
            attachment_id = attachment.id
            await self._save(file_attachment_id=attachment_id)

        in_euros = receipt.currency.upper() == "EUR"
        body = SupplierInvoiceImport(
            file_attachment_id=int(attachment_id),
            supplier_id=int(supplier_id),
            date=receipt.received_on,
            deadline=receipt.received_on + dt.timedelta(days=self._deadline_days),
            currency_amount_before_tax=amounts.before_tax,
            currency_amount=amounts.total,
            currency_tax=amounts.tax,
            amount=amounts.total if in_euros else None,
            tax=amounts.tax if in_euros else None,
            currency=receipt.currency.upper(),
            invoice_number=receipt.receipt_id[:100],
            label=f"Stockpit receipt {receipt.receipt_id} - {receipt.supplier_name}"[:2000],
            external_reference=reference,
            invoice_lines=[
                SupplierInvoiceImportLine(
                    currency_amount=group.total,
                    currency_tax=group.tax,
                    vat_rate=group.vat_rate,
                    amount=group.total if in_euros else None,
                    tax=group.tax if in_euros else None,
                )
                for group in amounts.groups
            ],
        )
        self._about("POST", "supplier_invoices/import", body)
        try:
            invoice = await self._client.import_supplier_invoice(body)
        except Conflict:
            # This file was imported already: by an earlier attempt whose answer was lost.
            self._about("GET", "supplier_invoices?filter=external_reference eq " + reference)
            existing = await self._client.find_supplier_invoice_by_external_reference(reference)
            if existing is None:
                raise
            return Done(existing.id)
        return Done(invoice.id)

    async def _find_or_create_supplier(self, name: str) -> Supplier:
        """Ours by reference, else the tenant's own by exact name, else a new one (only here)."""
        reference = supplier_reference(self._tenant, name)
        self._about("GET", "suppliers?filter=external_reference eq " + reference)
        found = await self._client.find_supplier_by_external_reference(reference)
        if found is not None:
            return found
        wanted = normalized_supplier_name(name)
        self._about("GET", "suppliers?filter=name start_with " + name.strip())
        same_name = [
            supplier
            async for supplier in self._client.iter_suppliers(
                filters=[Filter.start_with("name", name.strip())], sort="id"
            )
            if normalized_supplier_name(supplier.name) == wanted
        ]
        if same_name:
            return same_name[0]
        body = SupplierCreate(name=" ".join(name.split()), external_reference=reference)
        self._about("POST", "suppliers", body)
        try:
            return await self._client.create_supplier(body)
        except Conflict:
            found = await self._client.find_supplier_by_external_reference(reference)
            if found is None:
                raise
            return found


def _customer_state(customer: CompanyCustomer | IndividualCustomer) -> WrittenState:
    return WrittenState(
        customer.id, Seen({"name": customer.name, "emails": customer.emails}, customer.updated_at)
    )


def _pennylane_won(
    verdicts: Mapping[str, Verdict],
    updated_at: dt.datetime,
    change: ProductChangeRequested | CustomerWriteRequested,
) -> str:
    kept = ", ".join(name for name, verdict in verdicts.items() if verdict is Verdict.KEEP)
    return (
        f"last change wins: Pennylane's {kept} changed after this Stockpit change "
        f"(Pennylane {updated_at.isoformat()}, Stockpit {change.changed_at.isoformat()}); "
        "Pennylane's value stands and Stockpit takes it"
    )


def _customer_facts(change: CustomerWriteRequested) -> CustomerFacts:
    address = change.billing_address
    return CustomerFacts(
        kind=change.kind,
        name=change.name,
        first_name=change.first_name,
        last_name=change.last_name,
        emails=change.emails,
        billing_address=(
            BillingAddress(
                address.address, address.postal_code, address.city, address.country_alpha2
            )
            if address is not None
            else None
        ),
    )
