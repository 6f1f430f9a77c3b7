"""Handlers of Stockpit-side commands (`domain.commands`, from the HTTP API): functions of
(command, unit of work), run in an open unit of work that the caller commits.

Aggregates are loaded `FOR UPDATE` before they change, so concurrent requests on one record
apply one after the other; stock moves through `uow.post`, whose upsert is atomic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from uuid import UUID

from inventory.domain import commands as c
from inventory.domain.adjustments import ManualAdjustment, Transfer
from inventory.domain.catalog import Customer, Location, Product, Supplier, set_default_location
from inventory.domain.errors import DomainError
from inventory.domain.orders import DeliveryNote, Order
from inventory.domain.purchases import Purchase, Receipt
from inventory.domain.returns import Return
from inventory.domain.settings import TenantSettings
from inventory.domain.stock import StockLevel
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


async def get_settings(uow: UnitOfWork) -> TenantSettings:
    """The tenant's settings, created with the defaults when it has none (for writers)."""
    return await uow.repo.ensure_settings()


async def change_settings(change: c.ChangeSettings, uow: UnitOfWork) -> TenantSettings:
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


async def create_location(command: c.CreateLocation, uow: UnitOfWork) -> Location:
    await uow.repo.ensure_settings()
    location = Location.create(uow.tenant_id, command.name)
    await uow.repo.save_location(location)
    return location


async def change_location(command: c.ChangeLocation, uow: UnitOfWork) -> Location:
    location_id, name, active = command.location_id, command.name, command.active
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


async def create_product(command: c.CreateProduct, uow: UnitOfWork) -> Product:
    product, events = Product.create_in_stockpit(
        uow.tenant_id, command.name, command.sku, is_service=command.is_service
    )
    await uow.repo.save_product(product)
    uow.collect(events)
    return product


async def change_product(change: c.ChangeProduct, uow: UnitOfWork) -> Product:
    """Rename / change SKU (Pennylane follows when linked); deactivation stays in Stockpit."""
    product_id = change.product_id
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


async def delete_product(command: c.DeleteProduct, uow: UnitOfWork) -> Product:
    product_id = command.product_id
    product = _found(await uow.repo.product(product_id, for_update=True), "product", product_id)
    product.delete()
    await uow.repo.save_product(product)
    return product


async def create_customer(command: c.CreateCustomer, uow: UnitOfWork) -> Customer:
    customer = Customer.create_in_stockpit(
        uow.tenant_id, command.name, command.emails, command.address
    )
    await uow.repo.save_customer(customer)
    return customer


async def change_customer(command: c.ChangeCustomer, uow: UnitOfWork) -> Customer:
    customer_id, name, emails, address = (
        command.customer_id,
        command.name,
        command.emails,
        command.address,
    )
    customer = _found(
        await uow.repo.customer(customer_id, for_update=True), "customer", customer_id
    )
    uow.collect(customer.change_in_stockpit(name=name, emails=emails, address=address, at=uow.now))
    await uow.repo.save_customer(customer)
    return customer


async def create_supplier(command: c.CreateSupplier, uow: UnitOfWork) -> Supplier:
    supplier = Supplier.create(uow.tenant_id, command.name, command.emails)
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


async def create_order(command: c.CreateOrder, uow: UnitOfWork) -> Order:
    """An order typed in Stockpit; its customer is created in Pennylane if not there yet."""
    lines, customer_id, location_id = command.lines, command.customer_id, command.location_id
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


async def deliver(command: c.Deliver, uow: UnitOfWork) -> tuple[Order, DeliveryNote]:
    order = await _order_for_update(uow, command.order_id)
    note, outcome = order.deliver(
        command.lines, uow.now, location=await _location(uow, command.location_id)
    )
    await uow.repo.save_order(order)
    await uow.post(outcome)
    return order, note


async def archive_order(command: c.ArchiveOrder, uow: UnitOfWork) -> Order:
    order = await _order_for_update(uow, command.order_id)
    outcome = order.archive(uow.now)
    await uow.repo.save_order(order)
    await uow.post(outcome)
    return order


async def cancel_order(command: c.CancelOrder, uow: UnitOfWork) -> Order:
    order = await _order_for_update(uow, command.order_id)
    outcome = order.cancel(uow.now)
    await uow.repo.save_order(order)
    await uow.post(outcome)
    return order


# -- returns ------------------------------------------------------------------------------


async def edit_return(command: c.EditReturn, uow: UnitOfWork) -> Return:
    return_id, quantities, restock = command.return_id, command.quantities, command.restock
    return_ = _found(await uow.repo.return_(return_id, for_update=True), "return", return_id)
    if quantities is not None:
        await _products(uow, list(quantities))
    order = await _settling_order(uow, return_)
    outcome = return_.edit(uow.now, quantities=quantities, restock=restock, order=order)
    await _save_return(uow, return_, order)
    await uow.post(outcome)
    return return_


async def restock_return(command: c.RestockReturn, uow: UnitOfWork) -> Return:
    return_id = command.return_id
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


async def place_purchase(command: c.PlacePurchase, uow: UnitOfWork) -> Purchase:
    supplier_id, lines, location_id = command.supplier_id, command.lines, command.location_id
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


async def receive(command: c.Receive, uow: UnitOfWork) -> tuple[Purchase, Receipt]:
    purchase = await _purchase_for_update(uow, command.purchase_id)
    receipt, outcome = purchase.receive(
        command.lines,
        command.received_on,
        uow.now,
        location=await _location(uow, command.location_id),
    )
    await uow.repo.save_purchase(purchase)
    await uow.post(outcome)
    return purchase, receipt


async def close_purchase(command: c.ClosePurchase, uow: UnitOfWork) -> Purchase:
    purchase = await _purchase_for_update(uow, command.purchase_id)
    outcome = purchase.close(uow.now)
    await uow.repo.save_purchase(purchase)
    await uow.post(outcome)
    return purchase


async def send_receipt(command: c.SendReceipt, uow: UnitOfWork) -> Purchase:
    """ "Send to Pennylane": one request, again only after a failure, never once sent."""
    purchase = await _purchase_for_update(uow, command.purchase_id)
    supplier = _found(await uow.repo.supplier(purchase.supplier_id), "supplier", "of purchase")
    uow.collect(purchase.request_send(command.receipt_id, supplier))
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


async def adjust(command: c.Adjust, uow: UnitOfWork) -> ManualAdjustment:
    """By a delta, or to a counted quantity (the level is read under its row lock)."""
    product_id, location_id = command.product_id, command.location_id
    delta, counted, reason = command.delta, command.counted, command.reason
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


async def transfer(command: c.TransferStock, uow: UnitOfWork) -> Transfer:
    product, source = await _stockable(uow, command.product_id, command.from_location_id)
    destination = await _location(uow, command.to_location_id)
    assert destination is not None
    moved, outcome = Transfer.between(
        uow.tenant_id, product, source, destination, command.quantity, uow.now
    )
    await uow.post(outcome)
    return moved
