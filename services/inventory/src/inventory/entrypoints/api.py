"""Inventory's HTTP API: Stockpit-side commands and operators' queries.

Routes only translate HTTP to service-layer calls: each command runs in one transaction with
its outbox messages. A refused command answers 422 with the domain's reason, an unknown record
404 (both as `{"detail": "..."}`). Every route declares its scope (`SecureRouter`): reads need
`stock:read`, changes `stock:write`, for the path's tenant. Lists are paged by cursor
(`stockpit_runtime.pagination`); reads never create rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import Path, Request, Response
from sqlalchemy.exc import DBAPIError
from stockpit_runtime.auth import Scope, SecureRouter
from stockpit_runtime.pagination import Cursor, Limit, decode_cursor, link_next, page_of
from stockpit_runtime.service import ServiceRuntime

from inventory.adapters import stock_store
from inventory.entrypoints import schemas as s
from inventory.service_layer import commands, duplicates, views
from inventory.service_layer.unit_of_work import UnitOfWork

router = SecureRouter()
READ, WRITE = Scope.STOCK_READ, Scope.STOCK_WRITE
T = TypeVar("T")

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


async def _run(
    request: Request, tenant_id: str, command: Callable[[UnitOfWork], Awaitable[T]]
) -> T:
    """One transaction: the command, then its messages into the outbox. A deadlock or a
    serialization failure (PostgreSQL chose this transaction as the victim) is retried."""
    runtime = _runtime(request)
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            async with runtime.sessions.begin() as session:
                uow = UnitOfWork(session, tenant_id, topic_prefix=runtime.settings.topic_prefix)
                result = await command(uow)
                await uow.flush()
        except DBAPIError as exc:
            if attempt == TRANSACTION_ATTEMPTS or not _retryable(exc):
                raise
            await asyncio.sleep(0.01 * attempt)
        else:
            runtime.wake_relay()
            return result
    raise AssertionError("unreachable: the last attempt returns or raises")


TRANSACTION_ATTEMPTS = 5
RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


def _retryable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


# -- settings and locations ---------------------------------------------------------------


@router.get(
    "/tenants/{tenant_id}/settings", response_model=s.SettingsOut, tags=["settings"], scope=READ
)
async def get_settings(tenant_id: Tenant, request: Request) -> s.SettingsOut:
    """The tenant's settings; a tenant never changed yet has the defaults, and no default
    location until its first change creates its "Principal" one (a read creates nothing)."""
    return s.SettingsOut.of(await _run(request, tenant_id, commands.read_settings))


@router.put(
    "/tenants/{tenant_id}/settings", response_model=s.SettingsOut, tags=["settings"], scope=WRITE
)
async def put_settings(tenant_id: Tenant, body: s.SettingsIn, request: Request) -> s.SettingsOut:
    change = commands.SettingsChange(
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
    settings = await _run(request, tenant_id, lambda uow: commands.change_settings(uow, change))
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
    locations = await _run(request, tenant_id, lambda uow: uow.repo.locations())
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
    location = await _run(request, tenant_id, lambda uow: commands.create_location(uow, body.name))
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
        lambda uow: commands.change_location(uow, location_id, name=body.name, active=body.active),
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
    products = [
        product
        for product in await _run(request, tenant_id, lambda uow: uow.repo.products())
        if include_deleted or not product.deleted
    ]
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
        lambda uow: commands.create_product(uow, body.name, body.sku, is_service=body.is_service),
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
    change = commands.ProductChange(
        name=body.name, sku=body.sku, clear_sku=body.clear_sku, active=body.active
    )
    product = await _run(
        request, tenant_id, lambda uow: commands.change_product(uow, product_id, change)
    )
    return s.ProductOut.of(product)


@router.delete(
    "/tenants/{tenant_id}/products/{product_id}",
    response_model=s.ProductOut,
    tags=["products"],
    scope=WRITE,
)
async def delete_product(tenant_id: Tenant, product_id: UUID, request: Request) -> s.ProductOut:
    """A soft delete (the ledger keeps naming it); nothing happens in Pennylane."""
    product = await _run(request, tenant_id, lambda uow: commands.delete_product(uow, product_id))
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
        lambda uow: duplicates.merge_products(uow, product_id, original_id),
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
    customers = await _run(request, tenant_id, lambda uow: uow.repo.customers())
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
        lambda uow: commands.create_customer(
            uow,
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
        lambda uow: commands.change_customer(
            uow,
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
    suppliers = await _run(request, tenant_id, lambda uow: uow.repo.suppliers())
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
        request, tenant_id, lambda uow: commands.create_supplier(uow, body.name, tuple(body.emails))
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
    orders = await _run(request, tenant_id, lambda uow: uow.repo.orders(status=status))
    chosen = _page(
        request, response, orders, lambda x: (_micros(x.created_at), str(x.order_id)), limit, cursor
    )
    return [s.OrderOut.of(order) for order in chosen]


@router.get(
    "/tenants/{tenant_id}/orders/{order_id}", response_model=s.OrderOut, tags=["orders"], scope=READ
)
async def get_order(tenant_id: Tenant, order_id: UUID, request: Request) -> s.OrderOut:
    async def query(uow: UnitOfWork) -> s.OrderOut:
        order = await uow.repo.order(order_id)
        if order is None:
            raise commands.NotFound(f"order {order_id} not found")
        return s.OrderOut.of(order)

    return await _run(request, tenant_id, query)


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
        lambda uow: commands.create_order(
            uow,
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
        lambda uow: commands.deliver(uow, order_id, lines, location_id=body.location_id),
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
    order = await _run(request, tenant_id, lambda uow: commands.archive_order(uow, order_id))
    return s.OrderOut.of(order)


@router.post(
    "/tenants/{tenant_id}/orders/{order_id}/cancel",
    response_model=s.OrderOut,
    tags=["orders"],
    scope=WRITE,
)
async def cancel_order(tenant_id: Tenant, order_id: UUID, request: Request) -> s.OrderOut:
    """Reverses every stock effect the order still has."""
    order = await _run(request, tenant_id, lambda uow: commands.cancel_order(uow, order_id))
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
    returns = await _run(request, tenant_id, lambda uow: uow.repo.returns())
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
        lambda uow: commands.edit_return(
            uow, return_id, quantities=quantities, restock=body.restock
        ),
    )
    return s.ReturnOut.of(return_)


@router.post(
    "/tenants/{tenant_id}/returns/{return_id}/restock",
    response_model=s.ReturnOut,
    tags=["returns"],
    scope=WRITE,
)
async def restock_return(tenant_id: Tenant, return_id: UUID, request: Request) -> s.ReturnOut:
    return_ = await _run(request, tenant_id, lambda uow: commands.restock_return(uow, return_id))
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
    purchases = await _run(request, tenant_id, lambda uow: uow.repo.purchases())
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
        lambda uow: commands.place_purchase(
            uow,
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
        lambda uow: commands.receive(
            uow,
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
    purchase = await _run(request, tenant_id, lambda uow: commands.close_purchase(uow, purchase_id))
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
        request, tenant_id, lambda uow: commands.send_receipt(uow, purchase_id, receipt_id)
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
        lambda uow: commands.adjust(
            uow,
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
        lambda uow: commands.transfer(
            uow, body.product_id, body.from_location_id, body.to_location_id, body.quantity
        ),
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

    async def query(uow: UnitOfWork) -> list[s.StockRow]:
        rows = await stock_store.levels(
            uow.session,
            tenant_id,
            product_id=product_id,
            location_id=location_id,
            after=(str(after[0]), str(after[1])) if after else None,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        link_next(request, response, (rows[-1].product_id, rows[-1].location_id) if more else None)
        locations = {str(loc.location_id): loc.name for loc in await uow.repo.locations()}
        products = {
            str(p.product_id): p
            for p in await uow.repo.products({UUID(row.product_id) for row in rows})
        }
        return [
            s.StockRow(
                product_id=row.product_id,
                pennylane_product_id=(
                    products[row.product_id].pennylane_id if row.product_id in products else None
                ),
                product_name=(
                    products[row.product_id].name if row.product_id in products else None
                ),
                location_id=row.location_id,
                location_name=locations.get(row.location_id),
                real=row.real,
                reserved=row.reserved,
                available=row.available,
                incoming=row.incoming,
            )
            for row in rows
        ]

    return await _run(request, tenant_id, query)


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

    async def query(uow: UnitOfWork) -> list[s.LedgerRow]:
        rows = await stock_store.ledger(
            uow.session,
            tenant_id,
            product_id,
            limit=limit + 1,
            before_id=int(after[0]) if after else None,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        link_next(request, response, (rows[-1].id,) if more else None)
        locations = {str(loc.location_id): loc.name for loc in await uow.repo.locations()}
        causes = await views.ledger_documents(uow.session, tenant_id, rows)
        return [
            s.LedgerRow(
                entry_id=row.entry_id,
                location_id=row.location_id,
                location_name=locations.get(row.location_id),
                delta_real=row.delta_real,
                delta_reserved=row.delta_reserved,
                delta_incoming=row.delta_incoming,
                cause=row.cause,
                cause_kind=row.cause_kind,
                subject_id=row.subject_id,
                reference=row.reference,
                version=row.version,
                lines=row.lines,
                note=row.note,
                recorded_at=row.recorded_at,
                document=s.DocumentOut.of(cause.document) if cause.document else None,
                stockpit_number=cause.stockpit_number,
            )
            for row, cause in zip(rows, causes, strict=True)
        ]

    return await _run(request, tenant_id, query)


@router.get(
    "/tenants/{tenant_id}/reconciliation",
    response_model=s.ReconciliationOut,
    tags=["stock"],
    scope=READ,
)
async def reconciliation(tenant_id: Tenant, request: Request) -> s.ReconciliationOut:
    """Levels against the sum of the ledger, per product and location (rule 6)."""

    async def query(uow: UnitOfWork) -> s.ReconciliationOut:
        mismatches = await stock_store.reconcile(uow.session, tenant_id)
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

    return await _run(request, tenant_id, query)


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
    rows = await _run(
        request, tenant_id, lambda uow: uow.repo.write_statuses(failed_only=failed_only)
    )
    statuses = [s.WriteStatusOut.model_validate(row._mapping) for row in rows]
    return _page(request, response, statuses, lambda x: (x.entity_kind, x.entity_id), limit, cursor)
