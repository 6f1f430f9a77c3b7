"""Manual adjustments and transfers between locations: Stockpit-only stock movements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID, uuid4

from inventory.domain.catalog import Location, Product
from inventory.domain.errors import DomainError
from inventory.domain.outcome import Outcome
from inventory.domain.stock import Cause, CauseKind, Effect, StockKey, StockLevel, StockMovement
from inventory.domain.values import (
    ZERO,
    TenantId,
    require_aware,
    require_positive,
    require_quantity,
)


def _require_stockable(
    product: Product, location: Location, tenant_id: TenantId, *, service_allowed: bool = False
) -> None:
    if product.tenant_id != tenant_id or location.tenant_id != tenant_id:
        raise DomainError("product and location must belong to the tenant")
    if product.deleted:
        raise DomainError(f"product {product.name!r} is deleted")
    if product.is_service and not service_allowed:
        raise DomainError(f"{product.name!r} is a service: services carry no stock")
    if not location.active:
        raise DomainError(f"location {location.name!r} is inactive")


@dataclass(frozen=True)
class ManualAdjustment:
    adjustment_id: UUID
    tenant_id: TenantId
    product_id: UUID
    location_id: UUID
    real_delta: Decimal
    reason: str
    made_at: datetime

    @classmethod
    def by_delta(
        cls,
        tenant_id: TenantId,
        product: Product,
        location: Location,
        real_delta: Decimal,
        reason: str,
        at: datetime,
    ) -> tuple[ManualAdjustment, Outcome]:
        """Add (or, negative, remove) units of real stock, with a reason for the ledger.

        A service may be adjusted too: a product moved from goods to a 706 service in Pennylane
        keeps the stock its past documents left (rule 12), and a user must be able to clear it.
        """
        require_aware(at, "at")
        _require_stockable(product, location, tenant_id, service_allowed=True)
        if require_quantity(real_delta, "adjustment") == ZERO:
            raise DomainError("an adjustment of zero changes nothing")
        if not reason.strip():
            raise DomainError("a manual adjustment needs a reason")
        adjustment = cls(
            uuid4(), tenant_id, product.product_id, location.location_id, real_delta, reason, at
        )
        return adjustment, Outcome(movements=[adjustment.movement()])

    @classmethod
    def to_count(
        cls,
        level: StockLevel,
        product: Product,
        location: Location,
        counted: Decimal,
        reason: str,
        at: datetime,
    ) -> tuple[ManualAdjustment, Outcome]:
        """An inventory count: real stock becomes `counted` (`level` is the current level)."""
        if level.key != StockKey(product.product_id, location.location_id):
            raise DomainError("the level is not this product's at this location")
        if require_quantity(counted, "counted quantity") < ZERO:
            raise DomainError("a counted quantity cannot be negative")
        return cls.by_delta(level.tenant_id, product, location, counted - level.real, reason, at)

    def movement(self) -> StockMovement:
        return StockMovement(
            StockKey(self.product_id, self.location_id),
            Effect(real=self.real_delta),
            Cause(
                CauseKind.MANUAL_ADJUSTMENT,
                self.adjustment_id,
                str(self.adjustment_id),
                note=self.reason,
            ),
        )


@dataclass(frozen=True)
class Transfer:
    transfer_id: UUID
    tenant_id: TenantId
    product_id: UUID
    from_location_id: UUID
    to_location_id: UUID
    quantity: Decimal
    made_at: datetime

    @classmethod
    def between(
        cls,
        tenant_id: TenantId,
        product: Product,
        source: Location,
        destination: Location,
        quantity: Decimal,
        at: datetime,
    ) -> tuple[Transfer, Outcome]:
        """Move real stock from one location to another (the source may go negative)."""
        require_aware(at, "at")
        _require_stockable(product, source, tenant_id)
        _require_stockable(product, destination, tenant_id)
        if source.location_id == destination.location_id:
            raise DomainError("a transfer needs two different locations")
        require_positive(quantity, "transferred quantity")
        transfer = cls(
            uuid4(),
            tenant_id,
            product.product_id,
            source.location_id,
            destination.location_id,
            quantity,
            at,
        )
        return transfer, Outcome(movements=transfer.movements())

    def movements(self) -> list[StockMovement]:
        cause = Cause(CauseKind.TRANSFER, self.transfer_id, str(self.transfer_id))
        return [
            StockMovement(
                StockKey(self.product_id, self.from_location_id),
                Effect(real=-self.quantity),
                cause,
            ),
            StockMovement(
                StockKey(self.product_id, self.to_location_id), Effect(real=self.quantity), cause
            ),
        ]
