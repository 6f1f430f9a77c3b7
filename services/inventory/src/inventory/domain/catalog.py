"""Locations, products and services, customers and suppliers, and their sync rules.

Name/SKU (products) and name/e-mails (customers) "follow the last change on either side": each
synced field keeps the time of its last accepted change and the last value Pennylane reported
(`pennylane_*`). A Pennylane update changes a field only when Pennylane's own value changed (so a
price-only edit in Pennylane cannot undo a Stockpit rename) and it is newer than the field's last
change. Changes applied from Pennylane never emit "changed in Stockpit" events: that is what keeps
echo loops out (the origin is the method called, `*_in_stockpit` or `apply_pennylane_*`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid4

from inventory.domain.errors import DomainError
from inventory.domain.events import (
    CreatedBecause,
    CustomerChangedInStockpit,
    CustomerCreatedInStockpit,
    CustomerImported,
    DomainEvent,
    ProductChangedInStockpit,
    ProductCreated,
)
from inventory.domain.settings import TenantSettings
from inventory.domain.values import PennylaneId, PostalAddress, TenantId, require_aware


def _pennylane_wins(
    new_value: object, pennylane_value: object, changed_at: datetime | None, updated_at: datetime
) -> bool:
    """Pennylane really changed the field, and later than its last accepted change."""
    return new_value != pennylane_value and (changed_at is None or updated_at > changed_at)


def _require_name(name: str, what: str) -> str:
    if not name.strip():
        raise DomainError(f"{what} name must not be empty")
    return name


@dataclass
class Location:
    location_id: UUID
    tenant_id: TenantId
    name: str
    active: bool = True

    @classmethod
    def create(cls, tenant_id: TenantId, name: str) -> Location:
        return cls(uuid4(), tenant_id, _require_name(name, "location"))

    def rename(self, name: str) -> None:
        self.name = _require_name(name, "location")

    def deactivate(self, settings: TenantSettings) -> None:
        """Stock may remain; the location just takes no new movement from Pennylane."""
        if settings.default_location_id == self.location_id:
            raise DomainError("the default location cannot be deactivated; choose another first")
        self.active = False


def set_default_location(settings: TenantSettings, location: Location) -> None:
    if location.tenant_id != settings.tenant_id:
        raise DomainError("the default location must belong to the tenant")
    if not location.active:
        raise DomainError("the default location must be active")
    settings.default_location_id = location.location_id


@dataclass(frozen=True)
class PennylaneProduct:
    """A product as Pennylane describes it (from its changelog or from a document line)."""

    pennylane_id: PennylaneId
    name: str
    sku: str | None
    is_service: bool


@dataclass
class Product:
    """A product or a service (a Pennylane product booked on a 706 account).

    Identity is `product_id`; `pennylane_id` links it. A product whose Pennylane id changed cannot
    be recognised: the new id makes a new product (a duplicate), as the spec says.
    """

    product_id: UUID
    tenant_id: TenantId
    name: str
    sku: str | None
    is_service: bool
    pennylane_id: PennylaneId | None = None
    active: bool = True
    deleted: bool = False
    name_changed_at: datetime | None = None
    sku_changed_at: datetime | None = None
    pennylane_name: str | None = None
    pennylane_sku: str | None = None
    pennylane_updated_at: datetime | None = None
    # Rule 15 (see `inventory.domain.duplicates`): the product this one likely duplicates, and
    # the one it was merged into (its stock and Pennylane id went there; it is inactive).
    likely_duplicate_of: UUID | None = None
    merged_into: UUID | None = None

    @classmethod
    def create_in_stockpit(
        cls, tenant_id: TenantId, name: str, sku: str | None, *, is_service: bool = False
    ) -> tuple[Product, list[DomainEvent]]:
        """A Stockpit-only product: the spec syncs name/SKU of linked products only."""
        product = cls(uuid4(), tenant_id, _require_name(name, "product"), sku, is_service)
        return product, [product._created(CreatedBecause.CREATED_IN_STOCKPIT)]

    @classmethod
    def from_pennylane(
        cls,
        tenant_id: TenantId,
        source: PennylaneProduct,
        because: CreatedBecause,
        updated_at: datetime | None = None,
    ) -> tuple[Product, list[DomainEvent]]:
        """`updated_at` is Pennylane's product time; None when created from a document line."""
        product = cls(
            product_id=uuid4(),
            tenant_id=tenant_id,
            name=source.name,
            sku=source.sku,
            is_service=source.is_service,
            pennylane_id=source.pennylane_id,
            name_changed_at=updated_at,
            sku_changed_at=updated_at,
            pennylane_name=source.name,
            pennylane_sku=source.sku,
            pennylane_updated_at=updated_at,
        )
        return product, [product._created(because)]

    def _created(self, because: CreatedBecause) -> ProductCreated:
        return ProductCreated(
            self.tenant_id, self.product_id, self.pennylane_id, self.is_service, because
        )

    def _require_editable(self) -> None:
        if self.deleted:
            raise DomainError("a deleted product cannot be changed")

    def change_in_stockpit(
        self,
        *,
        name: str | None = None,
        sku: str | None = None,
        clear_sku: bool = False,
        at: datetime,
    ) -> list[DomainEvent]:
        """Rename or change the SKU in Stockpit; Pennylane follows if the product is linked."""
        require_aware(at, "at")
        self._require_editable()
        changed = False
        if name is not None and name != self.name:
            self.name = _require_name(name, "product")
            self.name_changed_at = at
            changed = True
        new_sku = None if clear_sku else sku
        if (clear_sku or sku is not None) and new_sku != self.sku:
            self.sku = new_sku
            self.sku_changed_at = at
            changed = True
        if not changed or self.pennylane_id is None:
            return []
        return [
            ProductChangedInStockpit(
                self.tenant_id,
                self.product_id,
                self.pennylane_id,
                self.name,
                self.sku,
                at,
                pennylane_name=self.pennylane_name,
                pennylane_sku=self.pennylane_sku,
                pennylane_updated_at=self.pennylane_updated_at,
            )
        ]

    def apply_pennylane_update(self, source: PennylaneProduct, updated_at: datetime) -> bool:
        """Apply a Pennylane product event; returns whether anything changed. Emits nothing.

        Events at or before the last one applied are ignored, so redelivery and reordering of a
        product's events are harmless.
        """
        require_aware(updated_at, "updated_at")
        if source.pennylane_id != self.pennylane_id:
            raise DomainError("a Pennylane product update must name the product's Pennylane id")
        if self.pennylane_updated_at is not None and updated_at <= self.pennylane_updated_at:
            return False
        before = (self.name, self.sku, self.is_service)
        if _pennylane_wins(source.name, self.pennylane_name, self.name_changed_at, updated_at):
            self.name = source.name
            self.name_changed_at = updated_at
        if _pennylane_wins(source.sku, self.pennylane_sku, self.sku_changed_at, updated_at):
            self.sku = source.sku
            self.sku_changed_at = updated_at
        self.pennylane_name = source.name
        self.pennylane_sku = source.sku
        self.is_service = source.is_service
        self.pennylane_updated_at = updated_at
        return before != (self.name, self.sku, self.is_service)

    def deactivate(self) -> None:
        """Nothing happens in Pennylane (spec)."""
        self._require_editable()
        self.active = False

    def reactivate(self) -> None:
        self._require_editable()
        self.active = True

    def delete(self) -> None:
        """A soft delete: the ledger keeps naming the product. Nothing happens in Pennylane."""
        self.deleted = True
        self.active = False


def import_pennylane_product(
    settings: TenantSettings,
    existing: Product | None,
    source: PennylaneProduct,
    updated_at: datetime,
) -> tuple[Product | None, list[DomainEvent]]:
    """A product event from Pennylane's changelog.

    A known product follows Pennylane (whatever the import settings: once imported, it syncs).
    An unknown one is imported only if the settings take it; otherwise None.
    """
    if existing is not None:
        existing.apply_pennylane_update(source, updated_at)
        return existing, []
    if not settings.imports_pennylane_product(is_service=source.is_service):
        return None, []
    return Product.from_pennylane(settings.tenant_id, source, CreatedBecause.IMPORTED, updated_at)


@dataclass(frozen=True)
class PennylaneCustomer:
    pennylane_id: PennylaneId
    name: str
    emails: tuple[str, ...] = ()
    address: PostalAddress | None = None


@dataclass
class Customer:
    """A customer. Name and e-mails sync both ways once linked; the address is carried along
    for the creation in Pennylane (which requires a billing address) but only name and e-mail
    changes are pushed, as the spec promises."""

    customer_id: UUID
    tenant_id: TenantId
    name: str
    emails: tuple[str, ...] = ()
    address: PostalAddress | None = None
    pennylane_id: PennylaneId | None = None
    pennylane_creation_requested: bool = False
    name_changed_at: datetime | None = None
    emails_changed_at: datetime | None = None
    pennylane_name: str | None = None
    pennylane_emails: tuple[str, ...] | None = None
    pennylane_updated_at: datetime | None = None

    @classmethod
    def create_in_stockpit(
        cls,
        tenant_id: TenantId,
        name: str,
        emails: tuple[str, ...] = (),
        address: PostalAddress | None = None,
    ) -> Customer:
        """Not sent to Pennylane until it is the customer of an order created in Stockpit."""
        return cls(uuid4(), tenant_id, _require_name(name, "customer"), emails, address)

    @classmethod
    def from_pennylane(
        cls, tenant_id: TenantId, source: PennylaneCustomer, updated_at: datetime | None = None
    ) -> tuple[Customer, list[DomainEvent]]:
        customer = cls(
            customer_id=uuid4(),
            tenant_id=tenant_id,
            name=source.name,
            emails=source.emails,
            address=source.address,
            pennylane_id=source.pennylane_id,
            name_changed_at=updated_at,
            emails_changed_at=updated_at,
            pennylane_name=source.name,
            pennylane_emails=source.emails,
            pennylane_updated_at=updated_at,
        )
        return customer, [CustomerImported(tenant_id, customer.customer_id, source.pennylane_id)]

    @property
    def known_to_pennylane(self) -> bool:
        return self.pennylane_id is not None or self.pennylane_creation_requested

    def change_in_stockpit(
        self,
        *,
        name: str | None = None,
        emails: tuple[str, ...] | None = None,
        address: PostalAddress | None = None,
        at: datetime,
    ) -> list[DomainEvent]:
        require_aware(at, "at")
        synced_change = False
        if name is not None and name != self.name:
            self.name = _require_name(name, "customer")
            self.name_changed_at = at
            synced_change = True
        if emails is not None and emails != self.emails:
            self.emails = emails
            self.emails_changed_at = at
            synced_change = True
        if address is not None:
            self.address = address
        if not synced_change or not self.known_to_pennylane:
            return []
        return [
            CustomerChangedInStockpit(
                self.tenant_id,
                self.customer_id,
                self.pennylane_id,
                self.name,
                self.emails,
                self.address,
                at,
                pennylane_name=self.pennylane_name,
                pennylane_emails=self.pennylane_emails,
                pennylane_updated_at=self.pennylane_updated_at,
            )
        ]

    def request_pennylane_creation(self, at: datetime) -> list[DomainEvent]:
        """Called when the customer is on an order created in Stockpit; asks only once."""
        if self.known_to_pennylane:
            return []
        self.pennylane_creation_requested = True
        return [
            CustomerCreatedInStockpit(
                self.tenant_id, self.customer_id, self.name, self.emails, self.address, at
            )
        ]

    def link_pennylane_id(self, pennylane_id: PennylaneId) -> None:
        """The outbound service reports the id Pennylane gave the customer."""
        if self.pennylane_id is not None and self.pennylane_id != pennylane_id:
            raise DomainError(f"customer already linked to Pennylane customer {self.pennylane_id}")
        self.pennylane_id = pennylane_id
        self.pennylane_name = self.name
        self.pennylane_emails = self.emails

    def apply_pennylane_update(self, source: PennylaneCustomer, updated_at: datetime) -> bool:
        """A Pennylane customer event; emits nothing (no echo). Older events are ignored."""
        require_aware(updated_at, "updated_at")
        if source.pennylane_id != self.pennylane_id:
            raise DomainError("a Pennylane customer update must name the customer's Pennylane id")
        if self.pennylane_updated_at is not None and updated_at <= self.pennylane_updated_at:
            return False
        before = (self.name, self.emails, self.address)
        if _pennylane_wins(source.name, self.pennylane_name, self.name_changed_at, updated_at):
            self.name = source.name
            self.name_changed_at = updated_at
        if _pennylane_wins(
            source.emails, self.pennylane_emails, self.emails_changed_at, updated_at
        ):
            self.emails = source.emails
            self.emails_changed_at = updated_at
        if source.address is not None and self.address is None:
            self.address = source.address
        self.pennylane_name = source.name
        self.pennylane_emails = source.emails
        self.pennylane_updated_at = updated_at
        return before != (self.name, self.emails, self.address)


def import_pennylane_customer(
    tenant_id: TenantId,
    existing: Customer | None,
    source: PennylaneCustomer,
    updated_at: datetime,
) -> tuple[Customer, list[DomainEvent]]:
    """Customers sync both ways: every Pennylane customer is imported or updated."""
    if existing is not None:
        existing.apply_pennylane_update(source, updated_at)
        return existing, []
    return Customer.from_pennylane(tenant_id, source, updated_at)


@dataclass
class Supplier:
    """Suppliers are never synchronised with Pennylane, in either direction."""

    supplier_id: UUID
    tenant_id: TenantId
    name: str
    emails: tuple[str, ...] = field(default=())
    active: bool = True

    @classmethod
    def create(cls, tenant_id: TenantId, name: str, emails: tuple[str, ...] = ()) -> Supplier:
        return cls(uuid4(), tenant_id, _require_name(name, "supplier"), emails)

    def rename(self, name: str) -> None:
        self.name = _require_name(name, "supplier")
