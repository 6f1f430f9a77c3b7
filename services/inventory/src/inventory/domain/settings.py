"""A tenant's integration settings and the stock mode they imply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from uuid import UUID

from inventory.domain.errors import DomainError
from inventory.domain.values import TenantId

DEFAULT_SYNC_INTERVAL = timedelta(minutes=30)
MIN_SYNC_INTERVAL = timedelta(seconds=5)
MAX_SYNC_INTERVAL = timedelta(days=1)


class StockMode(StrEnum):
    """How an order moves stock; an order keeps the mode it was created under (rule 1)."""

    # "delivery notes update real stock" off (default): the order takes units out of real stock.
    DEDUCT_ON_ORDER = "deduct_on_order"
    # ... on: the order reserves units; its delivery notes take them out of real stock.
    RESERVE_UNTIL_DELIVERY = "reserve_until_delivery"


@dataclass
class TenantSettings:
    """Per-tenant settings, with the spec's defaults. The default location is required."""

    tenant_id: TenantId
    default_location_id: UUID
    import_products: bool = True
    import_services: bool = False
    delivery_notes_update_real_stock: bool = False
    restock_on_credit_note: bool = False
    sync_interval: timedelta = DEFAULT_SYNC_INTERVAL

    def __post_init__(self) -> None:
        if not self.tenant_id:
            raise DomainError("tenant id is required")
        self.check()

    def check(self) -> None:
        """Re-run after the API changes fields: the sync interval must stay within bounds."""
        if not MIN_SYNC_INTERVAL <= self.sync_interval <= MAX_SYNC_INTERVAL:
            raise DomainError(
                f"sync interval must be between {MIN_SYNC_INTERVAL} and {MAX_SYNC_INTERVAL}, "
                f"got {self.sync_interval}"
            )

    @property
    def stock_mode(self) -> StockMode:
        """The mode a new order is created under."""
        if self.delivery_notes_update_real_stock:
            return StockMode.RESERVE_UNTIL_DELIVERY
        return StockMode.DEDUCT_ON_ORDER

    def imports_pennylane_product(self, *, is_service: bool) -> bool:
        """Whether a new Pennylane product (or service) is imported when it appears on its own.

        Services follow "import services" alone; the spec's "imported too" is read as "in
        addition to what 'import products' brings", not as "only when import products is on".
        """
        return self.import_services if is_service else self.import_products
