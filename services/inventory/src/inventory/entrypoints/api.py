"""Inventory's HTTP API: Stockpit-side commands and operators' queries.

Routes only translate HTTP to service-layer calls: each command runs in a unit of work of its
own, committed with its outbox messages and retried on a deadlock (`_run`); reads are
`service_layer.views` in a unit of work never committed (`_read`). A refused command answers
422 with the domain's reason, an unknown record 404 (both as `{"detail": "..."}`). Every route
declares its scope (`SecureRouter`): reads need `stock:read`, changes `stock:write`, for the
path's tenant. Lists are paged by cursor (`stockpit_runtime.pagination`); reads never create
rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import Path, Request, Response
from stockpit_runtime.auth import Scope, SecureRouter
from stockpit_runtime.pagination import Cursor, Limit, decode_cursor, link_next, page_of
from stockpit_runtime.service import ServiceRuntime
from stockpit_runtime.unit_of_work import run_in_transaction

from inventory.domain import commands as c
from inventory.entrypoints import schemas as s
from inventory.service_layer import duplicates, handlers, views
from inventory.service_layer.unit_of_work import UnitOfWork

router = SecureRouter()
READ, WRITE = Scope.STOCK_READ, Scope.STOCK_WRITE
T = TypeVar("T")
C = TypeVar("C")

Tenant = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OrderStatusName = Literal["draft", "open", "withdrawn", "archived", "cancelled"]


def _micros(at: datetime) -> int:
    """A time as an integer a cursor holds exactly."""
    return (at - EPOCH) // timedelta(microseconds=1)


def _page(
    request: Request,
    response: Response,
    items: Sequence[T],
    key: Callable[[T], tuple[Any, ...]],
    limit: int,
    cursor: str | None,
) -> list[T]:
    """One page of a list read whole (a tenant's catalog), in `key` order."""
    chosen, next_key = page_of(items, key, limit=limit, cursor=cursor, arity=2)
    link_next(request, response, next_key)
    return chosen


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def _uow(request: Request, tenant_id: str) -> UnitOfWork:
    runtime = _runtime(request)
    return UnitOfWork(
        runtime.sessions,
        tenant_id,
        topic_prefix=runtime.settings.topic_prefix,
    )


async def _run(
    request: Request,
    tenant_id: str,
    handler: Callable[[C, UnitOfWork], Awaitable[T]],
    command: C,
) -> T:
    """A command's handler in a unit of work of its own: committed with its outbox messages,
    run again on a deadlock or a serialization failure (`run_in_transaction`)."""
    return await run_in_transaction(
        lambda: _uow(request, tenant_id), lambda uow: handler(command, uow)
    )


async def _read(request: Request, tenant_id: str, view: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """A view in a unit of work that is never committed."""
    async with _uow(request, tenant_id) as uow:
        return await view(uow)


# -- settings and locations ---------------------------------------------------------------


@router.get(
    "/tenants/{tenant_id}/settings", response_model=s.SettingsOut, tags=["settings"], scope=READ
)
async def get_settings(tenant_id: Tenant, request: Request) -> s.SettingsOut:
    """The tenant's settings; a tenant never changed yet has the defaults, and no default
    location until its first change creates its "Principal" one (a read creates nothing)."""
    return s.SettingsOut.of(await _read(request, tenant_id, views.settings))


@router.put(
    "/tenants/{tenant_id}/settings", response_model=s.SettingsOut, tags=["settings"], scope=WRITE
)
async def put_settings(tenant_id: Tenant, body: s.SettingsIn, request: Request) -> s.SettingsOut:
    change = c.ChangeSettings(
        default_location_id=body.default_location_id,
        import_products=body.import_products,
        import_services=body.import_services,
        delivery_notes_update_real_stock=body.delivery_notes_update_real_stock,
        restock_on_credit_note=body.restock_on_credit_note,
        sync_interval=(
            timedelta(seconds=body.sync_interval_seconds)
            if body.sync_interval_seconds is not None
            else None
        ),
    )
    settings = await _run(request, tenant_id, handlers.change_settings, change)
    return s.SettingsOut.of(settings)


@router.get(
    "/tenants/{tenant_id}/locations",
    response_model=list[s.LocationOut],
    tags=["locations"],
    scope=READ,
)
async def list_locations(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[s.LocationOut]:
    locations = await _read(request, tenant_id, views.locations)
    chosen = _page(
        request, response, locations, lambda x: (x.name, str(x.location_id)), limit, cursor
    )
    return [s.LocationOut.of(location) for location in chosen]


@router.post(
    "/tenants/{tenant_id}/locations",
    response_model=s.LocationOut,
    status_code=201,
    tags=["locations"],
    scope=WRITE,
)
async def create_location(tenant_id: Tenant, body: s.LocationIn, request: Request) -> s.LocationOut:
    location = await _run(request, tenant_id, handlers.create_location, c.CreateLocation(body.name))
    return s.LocationOut.of(location)


@router.patch(
    "/tenants/{tenant_id}/locations/{location_id}",
    response_model=s.LocationOut,
    tags=["locations"],
    scope=WRITE,
)
async def change_location(
    tenant_id: Tenant, location_id: UUID, body: s.LocationChange, request: Request
) -> s.LocationOut:
    location = await _run(
        request,
        tenant_id,
        handlers.change_location,
        c.ChangeLocation(location_id, name=body.name, active=body.active),
    )
    return s.LocationOut.of(location)


# -- products, customers, suppliers -------------------------------------------------------


@router.get(
    "/tenants/{tenant_id}/products",
    response_model=list[s.ProductOut],
    tags=["products"],
    scope=READ,
)
async def list_products(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    include_deleted: bool = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[s.ProductOut]:
    products = await _read(
        request, tenant_id, lambda uow: views.products(uow, include_deleted=include_deleted)
    )
    chosen = _page(
        request, response, products, lambda x: (x.name, str(x.product_id)), limit, cursor
    )
    return [s.ProductOut.of(product) for product in chosen]


@router.post(
    "/tenants/{tenant_id}/products",
    response_model=s.ProductOut,
    status_code=201,
    tags=["products"],
    scope=WRITE,
)
async def create_product(tenant_id: Tenant, body: s.ProductIn, request: Request) -> s.ProductOut:
    product = await _run(
        request,
        tenant_id,
        handlers.create_product,
        c.CreateProduct(body.name, body.sku, is_service=body.is_service),
    )
    return s.ProductOut.of(product)


@router.patch(
    "/tenants/{tenant_id}/products/{product_id}",
    response_model=s.ProductOut,
    tags=["products"],
    scope=WRITE,
)
async def change_product(
    tenant_id: Tenant, product_id: UUID, body: s.ProductChangeIn, request: Request
) -> s.ProductOut:
    """Rename or change the SKU (sent to Pennylane when linked); deactivate or reactivate
    (nothing happens in Pennylane)."""
    change = c.ChangeProduct(
        product_id, name=body.name, sku=body.sku, clear_sku=body.clear_sku, active=body.active
    )
    product = await _run(request, tenant_id, handlers.change_product, change)
    return s.ProductOut.of(product)


@router.delete(
    "/tenants/{tenant_id}/products/{product_id}",
    response_model=s.ProductOut,
    tags=["products"],
    scope=WRITE,
)
async def delete_product(tenant_id: Tenant, product_id: UUID, request: Request) -> s.ProductOut:
    """A soft delete (the ledger keeps naming it); nothing happens in Pennylane."""
    product = await _run(request, tenant_id, handlers.delete_product, c.DeleteProduct(product_id))
    return s.ProductOut.of(product)


@router.post(
    "/tenants/{tenant_id}/products/{product_id}/merge-into/{original_id}",
    response_model=s.MergeOut,
    tags=["products"],
    scope=WRITE,
)
async def merge_product(
    tenant_id: Tenant, product_id: UUID, original_id: UUID, request: Request
) -> s.MergeOut:
    """Merge a (likely) duplicate into the original (rule 15): its stock per location moves
    to the original (ledger cause "merge"), documents naming its Pennylane id move the
    original from now on, and it is deactivated. Nothing is written to Pennylane."""
    result = await _run(
        request,
        tenant_id,
        duplicates.merge_products,
        c.MergeProducts(duplicate_id=product_id, original_id=original_id),
    )
    return s.MergeOut(
        original=s.ProductOut.of(result.original), duplicate=s.ProductOut.of(result.duplicate)
    )


@router.get(
    "/tenants/{tenant_id}/customers",
    response_model=list[s.CustomerOut],
    tags=["customers"],
    scope=READ,
)
async def list_customers(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[s.CustomerOut]:
    customers = await _read(request, tenant_id, views.customers)
    chosen = _page(
        request, response, customers, lambda x: (x.name, str(x.customer_id)), limit, cursor
    )
    return [s.CustomerOut.of(customer) for customer in chosen]


@router.post(
    "/tenants/{tenant_id}/customers",
    response_model=s.CustomerOut,
    status_code=201,
    tags=["customers"],
    scope=WRITE,
)
async def create_customer(tenant_id: Tenant, body: s.CustomerIn, request: Request) -> s.CustomerOut:
    """Created in Pennylane when it becomes the customer of an order made in Stockpit."""
    customer = await _run(
        request,
        tenant_id,
        handlers.create_customer,
        c.CreateCustomer(
            body.name,
            tuple(body.emails),
            body.address.to_domain() if body.address else None,
        ),
    )
    return s.CustomerOut.of(customer)


@router.patch(
    "/tenants/{tenant_id}/customers/{customer_id}",
    response_model=s.CustomerOut,
    tags=["customers"],
    scope=WRITE,
)
async def change_customer(
    tenant_id: Tenant, customer_id: UUID, body: s.CustomerChangeIn, request: Request
) -> s.CustomerOut:
    customer = await _run(
        request,
        tenant_id,
        handlers.change_customer,
        c.ChangeCustomer(
            customer_id,
            name=body.name,
            emails=tuple(body.emails) if body.emails is not None else None,
            address=body.address.to_domain() if body.address else None,
        ),
    )
    return s.CustomerOut.of(customer)


@router.get(
    "/tenants/{tenant_id}/suppliers",
    response_model=list[s.SupplierOut],
    tags=["purchases"],
    scope=READ,
)
async def list_suppliers(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[s.SupplierOut]:
    suppliers = await _read(request, tenant_id, views.suppliers)
    chosen = _page(
        request, response, suppliers, lambda x: (x.name, str(x.supplier_id)), limit, cursor
    )
    return [s.SupplierOut.of(supplier) for supplier in chosen]


@router.post(
    "/tenants/{tenant_id}/suppliers",
    response_model=s.SupplierOut,
    status_code=201,
    tags=["purchases"],
    scope=WRITE,
)
async def create_supplier(tenant_id: Tenant, body: s.SupplierIn, request: Request) -> s.SupplierOut:
    """Suppliers are never synchronised with Pennylane."""
    supplier = await _run(
        request,
        tenant_id,
        handlers.create_supplier,
        c.CreateSupplier(body.name, tuple(body.emails)),
    )
    return s.SupplierOut.of(supplier)


# -- orders -------------------------------------------------------------------------------


@router.get(
    "/tenants/{tenant_id}/orders", response_model=list[s.OrderOut], tags=["orders"], scope=READ
)
async def list_orders(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    status: OrderStatusName | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[s.OrderOut]:
    """Orders (from Pennylane documents or made in Stockpit) and their delivery state, oldest
    first."""
    orders = await _read(request, tenant_id, lambda uow: views.orders_of_tenant(uow, status=status))
    chosen = _page(
        request, response, orders, lambda x: (_micros(x.created_at), str(x.order_id)), limit, cursor
    )
    return [s.OrderOut.of(order) for order in chosen]


@router.get(
    "/tenants/{tenant_id}/orders/{order_id}", response_model=s.OrderOut, tags=["orders"], scope=READ
)
async def get_order(tenant_id: Tenant, order_id: UUID, request: Request) -> s.OrderOut:
    return s.OrderOut.of(await _read(request, tenant_id, lambda uow: views.order(uow, order_id)))


@router.post(
    "/tenants/{tenant_id}/orders",
    response_model=s.OrderOut,
    status_code=201,
    tags=["orders"],
    scope=WRITE,
)
async def create_order(tenant_id: Tenant, body: s.OrderIn, request: Request) -> s.OrderOut:
    order = await _run(
        request,
        tenant_id,
        handlers.create_order,
        c.CreateOrder(
            [(line.product_id, line.quantity) for line in body.lines],
            customer_id=body.customer_id,
            location_id=body.location_id,
        ),
    )
    return s.OrderOut.of(order)


@router.post(
    "/tenants/{tenant_id}/orders/{order_id}/delivery-notes",
    response_model=s.OrderOut,
    status_code=201,
    tags=["orders"],
    scope=WRITE,
)
async def create_delivery_note(
    tenant_id: Tenant, order_id: UUID, body: s.DeliveryNoteIn, request: Request
) -> s.OrderOut:
    lines: dict[UUID, s.Quantity] = {}
    for line in body.lines:
        lines[line.product_id] = lines.get(line.product_id, 0) + line.quantity
    order, _ = await _run(
        request,
        tenant_id,
        handlers.deliver,
        c.Deliver(order_id, lines, location_id=body.location_id),
    )
    return s.OrderOut.of(order)


@router.post(
    "/tenants/{tenant_id}/orders/{order_id}/archive",
    response_model=s.OrderOut,
    tags=["orders"],
    scope=WRITE,
)
async def archive_order(tenant_id: Tenant, order_id: UUID, request: Request) -> s.OrderOut:
    """Releases the remaining reservation."""
    order = await _run(request, tenant_id, handlers.archive_order, c.ArchiveOrder(order_id))
    return s.OrderOut.of(order)


@router.post(
    "/tenants/{tenant_id}/orders/{order_id}/cancel",
    response_model=s.OrderOut,
    tags=["orders"],
    scope=WRITE,
)
async def cancel_order(tenant_id: Tenant, order_id: UUID, request: Request) -> s.OrderOut:
    """Reverses every stock effect the order still has."""
    order = await _run(request, tenant_id, handlers.cancel_order, c.CancelOrder(order_id))
    return s.OrderOut.of(order)


# -- returns ------------------------------------------------------------------------------


@router.get(
    "/tenants/{tenant_id}/returns", response_model=list[s.ReturnOut], tags=["returns"], scope=READ
)
async def list_returns(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[s.ReturnOut]:
    returns = await _read(request, tenant_id, views.returns_of_tenant)
    chosen = _page(
        request,
        response,
        returns,
        lambda x: (_micros(x.created_at), str(x.return_id)),
        limit,
        cursor,
    )
    return [s.ReturnOut.of(return_) for return_ in chosen]


@router.patch(
    "/tenants/{tenant_id}/returns/{return_id}",
    response_model=s.ReturnOut,
    tags=["returns"],
    scope=WRITE,
)
async def edit_return(
    tenant_id: Tenant, return_id: UUID, body: s.ReturnChangeIn, request: Request
) -> s.ReturnOut:
    quantities = (
        {line.product_id: line.quantity for line in body.lines} if body.lines is not None else None
    )
    return_ = await _run(
        request,
        tenant_id,
        handlers.edit_return,
        c.EditReturn(return_id, quantities=quantities, restock=body.restock),
    )
    return s.ReturnOut.of(return_)


@router.post(
    "/tenants/{tenant_id}/returns/{return_id}/restock",
    response_model=s.ReturnOut,
    tags=["returns"],
    scope=WRITE,
)
async def restock_return(tenant_id: Tenant, return_id: UUID, request: Request) -> s.ReturnOut:
    return_ = await _run(request, tenant_id, handlers.restock_return, c.RestockReturn(return_id))
    return s.ReturnOut.of(return_)


# -- purchases and receipts ---------------------------------------------------------------


@router.get(
    "/tenants/{tenant_id}/purchases",
    response_model=list[s.PurchaseOut],
    tags=["purchases"],
    scope=READ,
)
async def list_purchases(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[s.PurchaseOut]:
    purchases = await _read(request, tenant_id, views.purchases)
    chosen = _page(
        request,
        response,
        purchases,
        lambda x: (_micros(x.placed_at), str(x.purchase_id)),
        limit,
        cursor,
    )
    return [s.PurchaseOut.of(purchase) for purchase in chosen]


@router.post(
    "/tenants/{tenant_id}/purchases",
    response_model=s.PurchaseOut,
    status_code=201,
    tags=["purchases"],
    scope=WRITE,
)
async def place_purchase(tenant_id: Tenant, body: s.PurchaseIn, request: Request) -> s.PurchaseOut:
    """Incoming stock grows by the purchased quantities at the purchase's location."""
    purchase = await _run(
        request,
        tenant_id,
        handlers.place_purchase,
        c.PlacePurchase(
            body.supplier_id,
            [
                (line.product_id, line.quantity, line.unit_price_before_tax, line.vat_rate)
                for line in body.lines
            ],
            location_id=body.location_id,
        ),
    )
    return s.PurchaseOut.of(purchase)


@router.post(
    "/tenants/{tenant_id}/purchases/{purchase_id}/receipts",
    response_model=s.PurchaseOut,
    status_code=201,
    tags=["purchases"],
    scope=WRITE,
)
async def record_receipt(
    tenant_id: Tenant, purchase_id: UUID, body: s.ReceiptIn, request: Request
) -> s.PurchaseOut:
    """A receipt (partial allowed): real stock up, incoming down."""
    purchase, _ = await _run(
        request,
        tenant_id,
        handlers.receive,
        c.Receive(
            purchase_id,
            {line.product_id: line.quantity for line in body.lines},
            body.received_on,
            location_id=body.location_id,
        ),
    )
    return s.PurchaseOut.of(purchase)


@router.post(
    "/tenants/{tenant_id}/purchases/{purchase_id}/close",
    response_model=s.PurchaseOut,
    tags=["purchases"],
    scope=WRITE,
)
async def close_purchase(tenant_id: Tenant, purchase_id: UUID, request: Request) -> s.PurchaseOut:
    purchase = await _run(request, tenant_id, handlers.close_purchase, c.ClosePurchase(purchase_id))
    return s.PurchaseOut.of(purchase)


@router.post(
    "/tenants/{tenant_id}/purchases/{purchase_id}/receipts/{receipt_id}/send",
    response_model=s.PurchaseOut,
    status_code=202,
    tags=["purchases"],
    scope=WRITE,
)
async def send_receipt(
    tenant_id: Tenant, purchase_id: UUID, receipt_id: UUID, request: Request
) -> s.PurchaseOut:
    """ "Send to Pennylane": the outbound service makes it a supplier invoice, once."""
    purchase = await _run(
        request, tenant_id, handlers.send_receipt, c.SendReceipt(purchase_id, receipt_id)
    )
    return s.PurchaseOut.of(purchase)


# -- adjustments and transfers ------------------------------------------------------------


@router.post(
    "/tenants/{tenant_id}/adjustments",
    response_model=s.AdjustmentOut,
    status_code=201,
    tags=["stock"],
    scope=WRITE,
)
async def adjust(tenant_id: Tenant, body: s.AdjustmentIn, request: Request) -> s.AdjustmentOut:
    adjustment = await _run(
        request,
        tenant_id,
        handlers.adjust,
        c.Adjust(
            body.product_id,
            body.location_id,
            delta=body.delta,
            counted=body.counted,
            reason=body.reason,
        ),
    )
    return s.AdjustmentOut(adjustment_id=adjustment.adjustment_id, real_delta=adjustment.real_delta)


@router.post(
    "/tenants/{tenant_id}/transfers",
    response_model=s.TransferOut,
    status_code=201,
    tags=["stock"],
    scope=WRITE,
)
async def transfer(tenant_id: Tenant, body: s.TransferIn, request: Request) -> s.TransferOut:
    moved = await _run(
        request,
        tenant_id,
        handlers.transfer,
        c.TransferStock(body.product_id, body.from_location_id, body.to_location_id, body.quantity),
    )
    return s.TransferOut(transfer_id=moved.transfer_id)


# -- queries ------------------------------------------------------------------------------


@router.get(
    "/tenants/{tenant_id}/stock", response_model=list[s.StockRow], tags=["stock"], scope=READ
)
async def stock_of_tenant(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    product_id: UUID | None = None,
    location_id: UUID | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[s.StockRow]:
    """Stock per product and location: real, reserved, available (= real − reserved), incoming;
    in product then location order."""
    after = decode_cursor(cursor, 2)
    rows = await _read(
        request,
        tenant_id,
        lambda uow: views.stock_levels(
            uow,
            product_id=product_id,
            location_id=location_id,
            after=(str(after[0]), str(after[1])) if after else None,
            limit=limit + 1,
        ),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    link_next(
        request, response, (rows[-1].level.product_id, rows[-1].level.location_id) if more else None
    )
    return [
        s.StockRow(
            product_id=row.level.product_id,
            pennylane_product_id=row.product.pennylane_id if row.product else None,
            product_name=row.product.name if row.product else None,
            location_id=row.level.location_id,
            location_name=row.location_name,
            real=row.level.real,
            reserved=row.level.reserved,
            available=row.level.available,
            incoming=row.level.incoming,
        )
        for row in rows
    ]


@router.get(
    "/tenants/{tenant_id}/products/{product_id}/ledger",
    response_model=list[s.LedgerRow],
    tags=["stock"],
    scope=READ,
)
async def ledger_of_product(
    tenant_id: Tenant,
    product_id: UUID,
    request: Request,
    response: Response,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[s.LedgerRow]:
    """Every stock change of the product, newest first, with its cause (the whole ledger
    page after page: follow the `Link` header's next cursor)."""
    after = decode_cursor(cursor, 1)
    rows = await _read(
        request,
        tenant_id,
        lambda uow: views.ledger_page(
            uow, product_id, before_id=int(after[0]) if after else None, limit=limit + 1
        ),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    link_next(request, response, (rows[-1].entry.id,) if more else None)
    return [
        s.LedgerRow(
            entry_id=row.entry.entry_id,
            location_id=row.entry.location_id,
            location_name=row.location_name,
            delta_real=row.entry.delta_real,
            delta_reserved=row.entry.delta_reserved,
            delta_incoming=row.entry.delta_incoming,
            cause=row.entry.cause,
            cause_kind=row.entry.cause_kind,
            subject_id=row.entry.subject_id,
            reference=row.entry.reference,
            version=row.entry.version,
            lines=row.entry.lines,
            note=row.entry.note,
            recorded_at=row.entry.recorded_at,
            document=s.DocumentOut.of(row.cause.document) if row.cause.document else None,
            stockpit_number=row.cause.stockpit_number,
        )
        for row in rows
    ]


@router.get(
    "/tenants/{tenant_id}/reconciliation",
    response_model=s.ReconciliationOut,
    tags=["stock"],
    scope=READ,
)
async def reconciliation(tenant_id: Tenant, request: Request) -> s.ReconciliationOut:
    """Levels against the sum of the ledger, per product and location (rule 6)."""
    mismatches = await _read(request, tenant_id, views.reconciliation)
    return s.ReconciliationOut(
        balanced=not mismatches,
        mismatches=[
            s.MismatchOut(
                product_id=m.product_id,
                location_id=m.location_id,
                level=s.Figures(
                    real=m.level.real, reserved=m.level.reserved, incoming=m.level.incoming
                ),
                ledger=s.Figures(
                    real=m.ledger.real, reserved=m.ledger.reserved, incoming=m.ledger.incoming
                ),
            )
            for m in mismatches
        ],
    )


@router.get(
    "/tenants/{tenant_id}/writes",
    response_model=list[s.WriteStatusOut],
    tags=["pennylane"],
    scope=READ,
)
async def write_statuses(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    failed_only: bool = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[s.WriteStatusOut]:
    """What the outbound service reported about writes to Pennylane (ids, failures), by
    record."""
    rows = await _read(
        request, tenant_id, lambda uow: views.write_statuses(uow, failed_only=failed_only)
    )
    statuses = [s.WriteStatusOut.model_validate(row._mapping) for row in rows]
    return _page(request, response, statuses, lambda x: (x.entity_kind, x.entity_id), limit, cursor)
