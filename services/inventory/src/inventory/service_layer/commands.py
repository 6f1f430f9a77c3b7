"""Stockpit-side commands (the HTTP API calls these): plain functions over a unit of work.

Aggregates are loaded `FOR UPDATE` before they change, so concurrent requests on one record
apply one after the other; stock moves through `uow.post`, whose upsert is atomic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

from inventory.domain.adjustments import ManualAdjustment, Transfer
from inventory.domain.catalog import Customer, Location, Product, Supplier, set_default_location
from inventory.domain.errors import DomainError
from inventory.domain.orders import DeliveryNote, Order
from inventory.domain.purchases import Purchase, Receipt
from inventory.domain.returns import Return
from inventory.domain.settings import TenantSettings
from inventory.domain.stock import StockLevel
from inventory.domain.values import PostalAddress
from inventory.service_layer.messages import settings_changed
from inventory.service_layer.unit_of_work import UnitOfWork

T = TypeVar("T")


class NotFound(Exception):
    """The record named does not exist for this tenant (a 404)."""


def _found(value: T | None, what: str, identifier: object) -> T:
    if value is None:
        raise NotFound(f"{what} {identifier} not found")
    return value


# -- settings and locations ---------------------------------------------------------------


@dataclass(frozen=True)
class SettingsChange:
    default_location_id: UUID | None = None
    import_products: bool | None = None
    import_services: bool | None = None
    delivery_notes_update_real_stock: bool | None = None
    restock_on_credit_note: bool | None = None
    sync_interval: timedelta | None = None


async def get_settings(uow: UnitOfWork) -> TenantSettings:
    """The tenant's settings, created with the defaults when it has none (for writers)."""
    return await uow.repo.ensure_settings()


async def read_settings(uow: UnitOfWork) -> TenantSettings | None:
    """The tenant's settings as stored; `None` for a tenant never changed (a read writes
    nothing)."""
    return await uow.repo.settings()


async def change_settings(uow: UnitOfWork, change: SettingsChange) -> TenantSettings:
    """Changing the mode affects new orders only (rule 1: orders keep theirs)."""
    await uow.repo.ensure_settings()
    settings = await uow.repo.settings(for_update=True)
    assert settings is not None
    if change.default_location_id is not None:
        location = _found(
            await uow.repo.location(change.default_location_id),
            "location",
            change.default_location_id,
        )
        set_default_location(settings, location)
    for name in (
        "import_products",
        "import_services",
        "delivery_notes_update_real_stock",
        "restock_on_credit_note",
        "sync_interval",
    ):
        value = getattr(change, name)
        if value is not None:
            setattr(settings, name, value)
    settings.check()
    await uow.repo.save_settings(settings)
    # Every change, not only the interval's: a lost or late message is made good by the next.
    uow.emit(settings_changed(uow.tenant_id, int(settings.sync_interval.total_seconds())))
    return settings


async def create_location(uow: UnitOfWork, name: str) -> Location:
    await uow.repo.ensure_settings()
    location = Location.create(uow.tenant_id, name)
    await uow.repo.save_location(location)
    return location


async def change_location(
    uow: UnitOfWork, location_id: UUID, *, name: str | None, active: bool | None
) -> Location:
    settings = await uow.repo.ensure_settings()
    location = _found(
        await uow.repo.location(location_id, for_update=True), "location", location_id
    )
    if name is not None:
        location.rename(name)
    if active is False:
        location.deactivate(settings)
    elif active is True:
        location.active = True
    await uow.repo.save_location(location)
    return location


# -- products, customers, suppliers -------------------------------------------------------


async def create_product(
    uow: UnitOfWork, name: str, sku: str | None, *, is_service: bool
) -> Product:
    product, events = Product.create_in_stockpit(uow.tenant_id, name, sku, is_service=is_service)
    await uow.repo.save_product(product)
    uow.collect(events)
    return product


@dataclass(frozen=True)
class ProductChange:
    name: str | None = None
    sku: str | None = None
    clear_sku: bool = False
    active: bool | None = None


async def change_product(uow: UnitOfWork, product_id: UUID, change: ProductChange) -> Product:
    """Rename / change SKU (Pennylane follows when linked); deactivation stays in Stockpit."""
    product = _found(await uow.repo.product(product_id, for_update=True), "product", product_id)
    if change.name is not None or change.sku is not None or change.clear_sku:
        uow.collect(
            product.change_in_stockpit(
                name=change.name, sku=change.sku, clear_sku=change.clear_sku, at=uow.now
            )
        )
    if change.active is False:
        product.deactivate()
    elif change.active is True:
        product.reactivate()
    await uow.repo.save_product(product)
    return product


async def delete_product(uow: UnitOfWork, product_id: UUID) -> Product:
    product = _found(await uow.repo.product(product_id, for_update=True), "product", product_id)
    product.delete()
    await uow.repo.save_product(product)
    return product


async def create_customer(
    uow: UnitOfWork, name: str, emails: tuple[str, ...], address: PostalAddress | None
) -> Customer:
    customer = Customer.create_in_stockpit(uow.tenant_id, name, emails, address)
    await uow.repo.save_customer(customer)
    return customer


async def change_customer(
    uow: UnitOfWork,
    customer_id: UUID,
    *,
    name: str | None,
    emails: tuple[str, ...] | None,
    address: PostalAddress | None,
) -> Customer:
    customer = _found(
        await uow.repo.customer(customer_id, for_update=True), "customer", customer_id
    )
    uow.collect(customer.change_in_stockpit(name=name, emails=emails, address=address, at=uow.now))
    await uow.repo.save_customer(customer)
    return customer


async def create_supplier(uow: UnitOfWork, name: str, emails: tuple[str, ...]) -> Supplier:
    supplier = Supplier.create(uow.tenant_id, name, emails)
    await uow.repo.save_supplier(supplier)
    return supplier


# -- orders -------------------------------------------------------------------------------


async def _products(uow: UnitOfWork, product_ids: Sequence[UUID]) -> dict[UUID, Product]:
    found = {p.product_id: p for p in await uow.repo.products(product_ids)}
    for product_id in product_ids:
        _found(found.get(product_id), "product", product_id)
    uow.know_products(list(found.values()))
    return found


async def _location(uow: UnitOfWork, location_id: UUID | None) -> Location | None:
    if location_id is None:
        return None
    return _found(await uow.repo.location(location_id), "location", location_id)


async def create_order(
    uow: UnitOfWork,
    lines: Sequence[tuple[UUID, Decimal]],
    *,
    customer_id: UUID | None,
    location_id: UUID | None,
) -> Order:
    """An order typed in Stockpit; its customer is created in Pennylane if not there yet."""
    settings = await uow.repo.ensure_settings()
    products = await _products(uow, [product_id for product_id, _ in lines])
    customer = (
        _found(await uow.repo.customer(customer_id, for_update=True), "customer", customer_id)
        if customer_id is not None
        else None
    )
    order, outcome = Order.create_in_stockpit(
        settings,
        [(products[product_id], quantity) for product_id, quantity in lines],
        uow.now,
        customer=customer,
        location=await _location(uow, location_id),
    )
    if customer is not None:
        await uow.repo.save_customer(customer)
    await uow.repo.save_order(order)
    await uow.post(outcome)
    return order


async def _order_for_update(uow: UnitOfWork, order_id: UUID) -> Order:
    return _found(await uow.repo.order(order_id, for_update=True), "order", order_id)


async def deliver(
    uow: UnitOfWork,
    order_id: UUID,
    lines: Mapping[UUID, Decimal],
    *,
    location_id: UUID | None,
) -> tuple[Order, DeliveryNote]:
    order = await _order_for_update(uow, order_id)
    note, outcome = order.deliver(lines, uow.now, location=await _location(uow, location_id))
    await uow.repo.save_order(order)
    await uow.post(outcome)
    return order, note


async def archive_order(uow: UnitOfWork, order_id: UUID) -> Order:
    order = await _order_for_update(uow, order_id)
    outcome = order.archive(uow.now)
    await uow.repo.save_order(order)
    await uow.post(outcome)
    return order


async def cancel_order(uow: UnitOfWork, order_id: UUID) -> Order:
    order = await _order_for_update(uow, order_id)
    outcome = order.cancel(uow.now)
    await uow.repo.save_order(order)
    await uow.post(outcome)
    return order


# -- returns ------------------------------------------------------------------------------


async def edit_return(
    uow: UnitOfWork,
    return_id: UUID,
    *,
    quantities: Mapping[UUID, Decimal] | None,
    restock: bool | None,
) -> Return:
    return_ = _found(await uow.repo.return_(return_id, for_update=True), "return", return_id)
    if quantities is not None:
        await _products(uow, list(quantities))
    order = await _settling_order(uow, return_)
    outcome = return_.edit(uow.now, quantities=quantities, restock=restock, order=order)
    await _save_return(uow, return_, order)
    await uow.post(outcome)
    return return_


async def restock_return(uow: UnitOfWork, return_id: UUID) -> Return:
    return_ = _found(await uow.repo.return_(return_id, for_update=True), "return", return_id)
    order = await _settling_order(uow, return_)
    outcome = return_.restock_now(uow.now, order=order)
    await _save_return(uow, return_, order)
    await uow.post(outcome)
    return return_


async def _settling_order(uow: UnitOfWork, return_: Return) -> Order | None:
    """The order a return is settled by (rule 10): it posts the return's stock effect."""
    if return_.order_id is None or not return_.settled_by_order:
        return None
    return await uow.repo.order(return_.order_id, for_update=True)


async def _save_return(uow: UnitOfWork, return_: Return, order: Order | None) -> None:
    await uow.repo.save_return(return_)
    if order is not None:
        await uow.repo.save_order(order)


# -- purchases and receipts ---------------------------------------------------------------


async def place_purchase(
    uow: UnitOfWork,
    supplier_id: UUID,
    lines: Sequence[tuple[UUID, Decimal, Decimal, str]],
    *,
    location_id: UUID | None,
) -> Purchase:
    settings = await uow.repo.ensure_settings()
    supplier = _found(await uow.repo.supplier(supplier_id), "supplier", supplier_id)
    products = await _products(uow, [line[0] for line in lines])
    location = await _location(uow, location_id or settings.default_location_id)
    assert location is not None
    purchase, outcome = Purchase.place(
        supplier,
        location,
        [(products[pid], quantity, price, vat) for pid, quantity, price, vat in lines],
        uow.now,
    )
    await uow.repo.save_purchase(purchase)
    await uow.post(outcome)
    return purchase


async def _purchase_for_update(uow: UnitOfWork, purchase_id: UUID) -> Purchase:
    return _found(await uow.repo.purchase(purchase_id, for_update=True), "purchase", purchase_id)


async def receive(
    uow: UnitOfWork,
    purchase_id: UUID,
    lines: Mapping[UUID, Decimal],
    received_on: date,
    *,
    location_id: UUID | None,
) -> tuple[Purchase, Receipt]:
    purchase = await _purchase_for_update(uow, purchase_id)
    receipt, outcome = purchase.receive(
        lines, received_on, uow.now, location=await _location(uow, location_id)
    )
    await uow.repo.save_purchase(purchase)
    await uow.post(outcome)
    return purchase, receipt


async def close_purchase(uow: UnitOfWork, purchase_id: UUID) -> Purchase:
    purchase = await _purchase_for_update(uow, purchase_id)
    outcome = purchase.close(uow.now)
    await uow.repo.save_purchase(purchase)
    await uow.post(outcome)
    return purchase


async def send_receipt(uow: UnitOfWork, purchase_id: UUID, receipt_id: UUID) -> Purchase:
    """ "Send to Pennylane": one request, again only after a failure, never once sent."""
    purchase = await _purchase_for_update(uow, purchase_id)
    supplier = _found(await uow.repo.supplier(purchase.supplier_id), "supplier", "of purchase")
    uow.collect(purchase.request_send(receipt_id, supplier))
    await uow.repo.save_purchase(purchase)
    return purchase


# -- adjustments and transfers ------------------------------------------------------------


async def _stockable(
    uow: UnitOfWork, product_id: UUID, location_id: UUID | None
) -> tuple[Product, Location]:
    settings = await uow.repo.ensure_settings()
    product = (await _products(uow, [product_id]))[product_id]
    location = await _location(uow, location_id or settings.default_location_id)
    assert location is not None
    return product, location


async def adjust(
    uow: UnitOfWork,
    product_id: UUID,
    location_id: UUID | None,
    *,
    delta: Decimal | None,
    counted: Decimal | None,
    reason: str,
) -> ManualAdjustment:
    """By a delta, or to a counted quantity (the level is read under its row lock)."""
    product, location = await _stockable(uow, product_id, location_id)
    if (delta is None) == (counted is None):
        raise DomainError("give either a delta or a counted quantity")
    if delta is not None:
        adjustment, outcome = ManualAdjustment.by_delta(
            uow.tenant_id, product, location, delta, reason, uow.now
        )
    else:
        assert counted is not None
        level = await uow.repo.lock_level(product.product_id, location.location_id)
        adjustment, outcome = ManualAdjustment.to_count(
            level or StockLevel(uow.tenant_id, product.product_id, location.location_id),
            product,
            location,
            counted,
            reason,
            uow.now,
        )
    await uow.post(outcome)
    return adjustment


async def transfer(
    uow: UnitOfWork,
    product_id: UUID,
    from_location_id: UUID,
    to_location_id: UUID,
    quantity: Decimal,
) -> Transfer:
    product, source = await _stockable(uow, product_id, from_location_id)
    destination = await _location(uow, to_location_id)
    assert destination is not None
    moved, outcome = Transfer.between(
        uow.tenant_id, product, source, destination, quantity, uow.now
    )
    await uow.post(outcome)
    return moved
