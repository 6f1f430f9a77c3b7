"""Small value types and checks shared by the whole domain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from inventory.domain.errors import DomainError

TenantId = str
PennylaneId = int

ZERO = Decimal(0)


def require_quantity(quantity: Decimal, what: str) -> Decimal:
    """A finite Decimal, or a DomainError naming `what`."""
    if not isinstance(quantity, Decimal) or not quantity.is_finite():
        raise DomainError(f"{what} must be a finite decimal quantity, got {quantity!r}")
    return quantity


def require_positive(quantity: Decimal, what: str) -> Decimal:
    if require_quantity(quantity, what) <= ZERO:
        raise DomainError(f"{what} must be greater than zero, got {quantity}")
    return quantity


def require_aware(moment: datetime, what: str) -> datetime:
    """Time is timezone-aware everywhere: a naive datetime would compare wrongly."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DomainError(f"{what} must be timezone-aware, got {moment!r}")
    return moment


@dataclass(frozen=True)
class PostalAddress:
    """Pennylane requires a billing address to create a company customer."""

    address: str
    postal_code: str
    city: str
    country_alpha2: str
