"""Deterministic external references: the key that makes every Pennylane create idempotent.

Pennylane has no idempotency key (NOTES §13). Each record Stockpit creates there carries an
`external_reference` derived only from the tenant and the Stockpit record, so a retry, a redelivery
or a restart after a crash finds the record it may already have created instead of creating it
again. Products, customers, suppliers and supplier invoices all accept and filter on
`external_reference` with `eq` (NOTES §2, §13).
"""

from __future__ import annotations

import hashlib
from typing import Literal

ReferencedKind = Literal["product", "customer", "receipt", "supplier"]
PREFIX = "stockpit"


def external_reference(tenant_id: str, kind: ReferencedKind, entity_id: str) -> str:
    """`stockpit:{tenant}:{kind}:{id}`: one value per Stockpit record, the same on every try."""
    if not tenant_id or not entity_id:
        raise ValueError("an external reference needs a tenant and an entity id")
    return f"{PREFIX}:{tenant_id}:{kind}:{entity_id}"


def normalized_supplier_name(name: str) -> str:
    """Names that differ only in case or spacing name the same supplier."""
    return " ".join(name.split()).casefold()


def supplier_reference(tenant_id: str, supplier_name: str) -> str:
    """Suppliers have no Stockpit id: their reference is a digest of the normalized name.

    A digest keeps the reference short and free of whatever characters the name holds.
    """
    normalized = normalized_supplier_name(supplier_name)
    if not normalized:
        raise ValueError("a supplier needs a name")
    digest = hashlib.sha256(normalized.encode()).hexdigest()[:24]
    return external_reference(tenant_id, "supplier", digest)
