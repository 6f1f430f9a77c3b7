"""Handlers for what the poller publishes: document versions and catalog changes.

Each runs inside the consumer's transaction (with the inbox claim). They take the tenant's
intake lock first: the documents topic is keyed by tenant so one consumer sees a tenant's
documents in order, and the lock keeps that true across two replicas during a rebalance and
against the catalog topic (both may create the same product). A tenant seen for the first time
gets default settings with a default location named "Principal".
"""

from __future__ import annotations

from collections.abc import Sequence

from stockpit_contracts import EnvelopeMeta
from stockpit_contracts.payloads import catalog as catalog_contract
from stockpit_contracts.payloads import documents as documents_contract

from inventory.domain.catalog import (
    PennylaneCustomer,
    PennylaneProduct,
    import_pennylane_customer,
    import_pennylane_product,
)
from inventory.domain.documents import (
    DocumentKind,
    DocumentLine,
    DocumentVersion,
    document_reference,
)
from inventory.domain.pennylane_import import apply_pennylane_document, named_product_ids
from inventory.domain.values import PostalAddress, TenantId
from inventory.service_layer.unit_of_work import UnitOfWork


def document_version(
    tenant_id: TenantId,
    payload: documents_contract.DocumentVersionRead | documents_contract.DocumentDeleted,
) -> DocumentVersion:
    """The contract's document event as the domain's version (a deletion is a version too)."""
    kind = DocumentKind(payload.kind.value)
    if isinstance(payload, documents_contract.DocumentDeleted):
        return DocumentVersion.deletion(tenant_id, kind, payload.pennylane_id, payload.deleted_at)
    return DocumentVersion(
        tenant_id=tenant_id,
        kind=kind,
        pennylane_id=payload.pennylane_id,
        updated_at=payload.updated_at,
        draft=payload.draft,
        lines=tuple(
            DocumentLine(
                line_id=line.pennylane_line_id,
                quantity=line.quantity,
                product=(
                    PennylaneProduct(
                        line.product.pennylane_id,
                        line.product.label,
                        line.product.reference,
                        line.product.is_service,
                    )
                    if line.product is not None
                    else None
                ),
                label=line.label,
            )
            for line in payload.lines
        ),
        customer=(
            PennylaneCustomer(
                payload.customer.pennylane_id, payload.customer.name, payload.customer.emails
            )
            if payload.customer is not None
            else None
        ),
        quote_id=payload.quote_id,
        credited_invoice_id=payload.credited_invoice_id,
        number=payload.number,
        status=payload.status,
        issued_on=payload.issued_on,
    )


async def apply_documents(
    versions: Sequence[tuple[DocumentVersion, EnvelopeMeta]], uow: UnitOfWork
) -> None:
    """Apply one tenant's document versions in order, each as its own event (`caused_by`).

    Everything the versions name (products, customers, the orders holding them or made from
    their quotes) is read up front in a few queries, and `uow.flush()` writes once for all.
    """
    repo = uow.repo
    await repo.lock_pennylane_intake()
    await repo.ensure_settings()
    await repo.products_by_pennylane_id(
        {product for version, _ in versions for product in named_product_ids(version)}
    )
    await repo.customers_by_pennylane_id(
        {version.customer.pennylane_id for version, _ in versions if version.customer}
    )
    references = [
        document_reference(DocumentKind.INVOICE, version.credited_invoice_id)
        for version, _ in versions
        if version.credited_invoice_id is not None
    ]
    references.extend(version.reference for version, _ in versions if not version.is_credit_note)
    await repo.prefetch_orders(
        references, {version.quote_id for version, _ in versions if version.quote_id is not None}
    )
    for version, caused_by in versions:
        uow.caused_by = caused_by
        await apply_document(version, uow)


async def apply_document(version: DocumentVersion, uow: UnitOfWork) -> bool:
    """Apply one document version by difference; False when it was stale or a duplicate."""
    repo = uow.repo
    await repo.lock_pennylane_intake()
    settings = await repo.ensure_settings()
    products = await repo.products_by_pennylane_id(named_product_ids(version))
    customer = (
        await repo.customer_by_pennylane_id(version.customer.pennylane_id)
        if version.customer is not None
        else None
    )
    if version.is_credit_note:
        return_ = await repo.return_of_credit_note(version.pennylane_id, for_update=True)
        # The order settles the return (rule 10): the one it is already settled by (a deletion
        # names no invoice), else the credited invoice's.
        credited = None
        if return_ is not None and return_.order_id is not None:
            credited = await repo.order(return_.order_id, for_update=True)
        if credited is None and version.credited_invoice_id is not None:
            credited = await repo.order_holding(
                DocumentKind.INVOICE, version.credited_invoice_id, for_update=True
            )
        application = apply_pennylane_document(
            settings,
            version,
            uow.now,
            products=products,
            customer=customer,
            return_=return_,
            credited_order=credited,
        )
    else:
        # A deletion names no quote: the order holding the document is looked up first.
        order = await repo.order_holding(version.kind, version.pennylane_id, for_update=True)
        if order is None and version.quote_id is not None:
            order = await repo.order_of_quote(version.quote_id, for_update=True)
        application = apply_pennylane_document(
            settings, version, uow.now, products=products, customer=customer, order=order
        )
    if not application.applied:
        return False
    for product in application.new_products:
        await repo.save_product(product)
    if application.new_customer is not None:
        await repo.save_customer(application.new_customer)
    if application.order is not None:
        await repo.save_order(application.order)
    if application.return_ is not None:
        await repo.save_return(application.return_)
    uow.know_products([*products.values(), *application.new_products])
    await uow.post(application.outcome)
    return True


async def apply_product(payload: catalog_contract.ProductUpserted, uow: UnitOfWork) -> None:
    repo = uow.repo
    await repo.lock_pennylane_intake()
    settings = await repo.ensure_settings()
    existing = (await repo.products_by_pennylane_id([payload.pennylane_id], for_update=True)).get(
        payload.pennylane_id
    )
    product, events = import_pennylane_product(
        settings,
        existing,
        PennylaneProduct(
            payload.pennylane_id, payload.label, payload.reference, payload.is_service
        ),
        payload.updated_at,
    )
    if product is not None:
        await repo.save_product(product)
    uow.collect(events)


async def apply_product_deleted(payload: catalog_contract.ProductDeleted, uow: UnitOfWork) -> None:
    """A product deleted in Pennylane is deactivated here: its stock and ledger stay visible,
    and documents that name it still apply (an invoice is an accounting fact)."""
    repo = uow.repo
    await repo.lock_pennylane_intake()
    product = (await repo.products_by_pennylane_id([payload.pennylane_id], for_update=True)).get(
        payload.pennylane_id
    )
    if product is not None and product.active and not product.deleted:
        product.deactivate()
        await repo.save_product(product)


async def apply_customer(payload: catalog_contract.CustomerUpserted, uow: UnitOfWork) -> None:
    repo = uow.repo
    await repo.lock_pennylane_intake()
    existing = await repo.customer_by_pennylane_id(payload.pennylane_id, for_update=True)
    address = payload.billing_address
    customer, events = import_pennylane_customer(
        uow.tenant_id,
        existing,
        PennylaneCustomer(
            payload.pennylane_id,
            payload.name,
            payload.emails,
            PostalAddress(
                address.address, address.postal_code, address.city, address.country_alpha2
            )
            if address is not None
            else None,
        ),
        payload.updated_at,
    )
    await repo.save_customer(customer)
    uow.collect(events)
