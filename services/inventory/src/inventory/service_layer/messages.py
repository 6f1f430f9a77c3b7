"""Domain events → the contract payloads other services read, with their topic and key."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from stockpit_contracts import Payload, partition_key
from stockpit_contracts.payloads import catalog as catalog_contract
from stockpit_contracts.payloads import inventory as inventory_contract
from stockpit_contracts.payloads import outbound as outbound_contract
from stockpit_contracts.topics import (
    INVENTORY_PROBLEMS,
    INVENTORY_SETTINGS,
    INVENTORY_STOCK,
    OUTBOUND_REQUESTS,
    Topic,
)

from inventory.domain import events as domain
from inventory.domain.values import PostalAddress

Message = tuple[Topic, bytes, Payload]


def _address(address: PostalAddress | None) -> catalog_contract.PostalAddress | None:
    if address is None:
        return None
    return catalog_contract.PostalAddress(
        address=address.address,
        postal_code=address.postal_code,
        city=address.city,
        country_alpha2=address.country_alpha2,
    )


def problem(
    tenant_id: str,
    kind: inventory_contract.ProblemKind,
    reason: str,
    subject_kind: str,
    subject_id: str,
) -> Message:
    return (
        INVENTORY_PROBLEMS,
        partition_key(tenant_id),
        inventory_contract.ProblemReported(
            kind=kind, reason=reason[:2000], subject_kind=subject_kind, subject_id=subject_id
        ),
    )


def settings_changed(tenant_id: str, sync_interval_s: int) -> Message:
    """The tenant's settings that other services act on (the poller's schedule)."""
    return (
        INVENTORY_SETTINGS,
        partition_key(tenant_id),
        inventory_contract.TenantSettingsChanged(sync_interval_s=sync_interval_s),
    )


def to_message(event: domain.DomainEvent, pennylane_ids: Mapping[UUID, int]) -> Message | None:
    """The message an event becomes, or None for facts that stay inside inventory."""
    tenant = event.tenant_id
    match event:
        case domain.StockChanged():
            return (
                INVENTORY_STOCK,
                partition_key(tenant, product_id := str(event.product_id)),
                inventory_contract.StockChanged(
                    product_id=product_id,
                    pennylane_product_id=pennylane_ids.get(event.product_id),
                    location_id=str(event.location_id),
                    real=event.real,
                    reserved=event.reserved,
                    available=event.available,
                    incoming=event.incoming,
                    delta_real=event.real_delta,
                    delta_reserved=event.reserved_delta,
                    delta_incoming=event.incoming_delta,
                    cause=event.cause,
                    ledger_entry_id=str(event.ledger_entry_id),
                ),
            )
        case domain.NegativeStock():
            return problem(
                tenant,
                "negative_stock",
                f"{event.measure.value} stock is {event.quantity} at location "
                f"{event.location_id} after {event.cause}",
                "product",
                str(event.product_id),
            )
        case domain.Conflict():
            return problem(
                tenant,
                "conflict",
                f"{event.reason.value}: {event.detail}",
                event.subject_kind,
                str(event.subject_id),
            )
        case domain.UnknownReference():
            return problem(
                tenant,
                "unknown_reference",
                f"{event.referenced_by} names unknown {event.reference_kind} {event.pennylane_id}",
                event.reference_kind,
                str(event.pennylane_id),
            )
        case domain.LikelyDuplicate():
            return problem(
                tenant,
                "conflict",
                f"likely_duplicate: product {event.product_id} (Pennylane "
                f"{event.pennylane_id}) has the same {event.matched_on} {event.value!r} as "
                f"product {event.original_id}; merge it with POST /tenants/{tenant}/products/"
                f"{event.product_id}/merge-into/{event.original_id}",
                "product",
                str(event.product_id),
            )
        case domain.ProductChangedInStockpit():
            return (
                OUTBOUND_REQUESTS,
                partition_key(tenant, "product", str(event.product_id)),
                outbound_contract.ProductChangeRequested(
                    product_id=str(event.product_id),
                    pennylane_product_id=event.pennylane_id,
                    label=event.name,
                    reference=event.sku,
                    changed_at=event.changed_at,
                    pennylane_label=event.pennylane_name,
                    pennylane_reference=event.pennylane_sku,
                    pennylane_updated_at=event.pennylane_updated_at,
                ),
            )
        case domain.CustomerCreatedInStockpit() | domain.CustomerChangedInStockpit():
            changed = event if isinstance(event, domain.CustomerChangedInStockpit) else None
            linked = changed.pennylane_id if changed is not None else None
            changed_at = (
                event.created_at
                if isinstance(event, domain.CustomerCreatedInStockpit)
                else event.changed_at
            )
            return (
                OUTBOUND_REQUESTS,
                partition_key(tenant, "customer", str(event.customer_id)),
                outbound_contract.CustomerWriteRequested(
                    customer_id=str(event.customer_id),
                    pennylane_customer_id=linked,
                    # Stockpit keeps no person/company distinction; Pennylane companies carry
                    # the name as one field, which is what Stockpit has.
                    kind="company",
                    name=event.name,
                    emails=event.emails,
                    billing_address=_address(event.address),
                    changed_at=changed_at,
                    pennylane_name=changed.pennylane_name if changed else None,
                    pennylane_emails=changed.pennylane_emails if changed else None,
                    pennylane_updated_at=changed.pennylane_updated_at if changed else None,
                ),
            )
        case domain.ReceiptSendRequested():
            return (
                OUTBOUND_REQUESTS,
                partition_key(tenant, "receipt", str(event.receipt_id)),
                outbound_contract.ReceiptSendRequested(
                    receipt_id=str(event.receipt_id),
                    purchase_id=str(event.purchase_id),
                    supplier_name=event.supplier_name,
                    received_on=event.received_on,
                    lines=tuple(
                        outbound_contract.ReceiptLine(
                            label=line.label,
                            quantity=line.quantity,
                            unit_price_before_tax=line.unit_price_before_tax,
                            vat_rate=line.vat_rate,
                        )
                        for line in event.lines
                    ),
                ),
            )
        case _:
            return None
