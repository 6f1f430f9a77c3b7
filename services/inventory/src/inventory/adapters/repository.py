"""One tenant's aggregates in PostgreSQL: load (optionally `FOR UPDATE`), save, find.

Every query is scoped to the repository's tenant, so nothing of one tenant can reach another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, TypeVar
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.adapters import orm
from inventory.adapters.codec import Json, decode, dumps, encode
from inventory.domain.catalog import Customer, Location, Product, Supplier
from inventory.domain.documents import DocumentKind, document_reference
from inventory.domain.orders import Order
from inventory.domain.purchases import Purchase
from inventory.domain.returns import Return
from inventory.domain.settings import TenantSettings
from inventory.domain.stock import StockLevel
from inventory.domain.values import PennylaneId, TenantId

T = TypeVar("T")

DEFAULT_LOCATION_NAME = "Principal"


@cache
def _upsert_statement(table: str, id_column: str, lookups: tuple[str, ...]) -> sa.TextClause:
    columns = ", ".join((id_column, "tenant_id", *lookups, "doc"))
    values = ", ".join((":entity_id", ":tenant_id", *(f":{name}" for name in lookups)))
    updates = ", ".join(
        ("doc = EXCLUDED.doc", "updated_at = now()", *(f"{n} = EXCLUDED.{n}" for n in lookups))
    )
    return sa.text(
        f"INSERT INTO {table} AS current ({columns}) VALUES ({values}, CAST(:doc AS jsonb)) "
        f"ON CONFLICT ({id_column}) DO UPDATE SET {updates} "
        "WHERE current.tenant_id = EXCLUDED.tenant_id"
    )


_ORDER_HOLDING = (
    "SELECT o.doc FROM orders o JOIN order_documents d ON d.order_id = o.order_id "
    "WHERE d.tenant_id = :tenant_id AND d.reference = :reference AND o.tenant_id = :tenant_id"
)
ORDER_HOLDING = sa.text(_ORDER_HOLDING).columns(orm.orders.c.doc)
ORDER_HOLDING_FOR_UPDATE = sa.text(_ORDER_HOLDING + " FOR UPDATE OF o").columns(orm.orders.c.doc)
ORDERS_HOLDING_OR_OF_QUOTES_FOR_UPDATE = sa.text(
    "SELECT o.doc, d.reference FROM orders o LEFT JOIN order_documents d "
    "ON d.order_id = o.order_id AND d.tenant_id = :tenant_id "
    "WHERE o.tenant_id = :tenant_id AND (o.order_id IN (SELECT order_id FROM order_documents "
    "WHERE tenant_id = :tenant_id AND reference = ANY(CAST(:references AS text[]))) "
    "OR o.quote_id = ANY(CAST(:quote_ids AS bigint[]))) "
    "ORDER BY o.order_id FOR UPDATE OF o"
).columns(orm.orders.c.doc, orm.order_documents.c.reference)
SAVE_ORDERS = sa.text(
    "INSERT INTO orders AS current (order_id, tenant_id, quote_id, status, doc) "
    "SELECT order_id, :tenant_id, quote_id, status, doc FROM unnest("
    "CAST(:order_ids AS uuid[]), CAST(:quote_ids AS bigint[]), CAST(:statuses AS text[]), "
    "CAST(:docs AS text[])) AS saved(order_id, quote_id, status, doc) "
    "ON CONFLICT (order_id) DO UPDATE SET doc = EXCLUDED.doc, updated_at = now(), "
    "quote_id = EXCLUDED.quote_id, status = EXCLUDED.status "
    "WHERE current.tenant_id = EXCLUDED.tenant_id"
)
HOLD_DOCUMENTS = sa.text(
    "INSERT INTO order_documents (tenant_id, reference, order_id) "
    "SELECT :tenant_id, reference, order_id FROM unnest(CAST(:references AS text[]), "
    "CAST(:order_ids AS uuid[])) AS held(reference, order_id) "
    "ORDER BY reference ON CONFLICT DO NOTHING"
)
PRODUCTS_BY_PENNYLANE_ID = sa.text(
    "SELECT doc FROM products WHERE tenant_id = :tenant_id "
    "AND pennylane_id = ANY(CAST(:ids AS bigint[]))"
)
CUSTOMERS_BY_PENNYLANE_ID = sa.text(
    "SELECT doc FROM customers WHERE tenant_id = :tenant_id "
    "AND pennylane_id = ANY(CAST(:ids AS bigint[]))"
)
PRODUCTS_BY_PENNYLANE_ID_FOR_UPDATE = sa.text(
    PRODUCTS_BY_PENNYLANE_ID.text + " ORDER BY product_id FOR UPDATE"
)


# Re-pointing the tenant to another Pennylane company (`forget_pennylane_links`): every link to
# the old company goes, Stockpit's own records stay. What Stockpit last saw in the old company's
# records goes too: it is no "last change" of the new company's.
_FORGET_PENNYLANE_LINKS = (
    "UPDATE products SET pennylane_id = NULL, updated_at = now(), doc = doc || "
    '\'{"pennylane_id": null, "pennylane_name": null, "pennylane_sku": null, '
    '"pennylane_updated_at": null}\'::jsonb WHERE tenant_id = :tenant_id',
    "UPDATE customers SET pennylane_id = NULL, updated_at = now(), doc = doc || "
    '\'{"pennylane_id": null, "pennylane_creation_requested": false, '
    '"pennylane_name": null, "pennylane_emails": null, "pennylane_updated_at": null}\''
    "::jsonb WHERE tenant_id = :tenant_id",
    "UPDATE orders SET quote_id = NULL, updated_at = now(), "
    "doc = (CAST(doc AS jsonb) || '{\"pennylane_unlinked\": true}'::jsonb)::text "
    "WHERE tenant_id = :tenant_id",
    "DELETE FROM order_documents WHERE tenant_id = :tenant_id",
    "UPDATE returns SET credit_note_id = NULL, updated_at = now(), "
    "doc = doc || '{\"pennylane_unlinked\": true}'::jsonb WHERE tenant_id = :tenant_id",
)


class InventoryRepository:
    """Orders are kept in an identity map and written when the unit of work flushes (`flush`):
    a consumer batch that touches an order many times reads it once and writes it once, and
    an order created by one document is found by the next one of the same quote before it
    was ever written. Any query the map cannot answer flushes the pending orders first."""

    def __init__(self, session: AsyncSession, tenant_id: TenantId) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self._orders: dict[UUID, Order] = {}
        self._unsaved_orders: dict[UUID, Order] = {}
        # Document reference -> the order holding it (the first holder wins, as in the table).
        self._holders: dict[str, UUID] = {}
        # References and quotes known to have no order (answered by `prefetch_orders`).
        self._no_holder: set[str] = set()
        self._no_order_of_quote: set[PennylaneId] = set()

    async def forget_pennylane_links(self) -> None:
        """The tenant now reads another Pennylane company, whose ids may be the same numbers:
        products and customers are unlinked (the new company's catalog imports fresh, a
        product with a known SKU flagged as a likely duplicate), and no order or return answers
        to a document id any more. Stock, ledger and the records themselves stay."""
        await self.lock_pennylane_intake()
        for statement in _FORGET_PENNYLANE_LINKS:
            await self.session.execute(sa.text(statement), {"tenant_id": self.tenant_id})
        self.session.info.pop(("inventory-products", self.tenant_id), None)
        self.session.info.pop(("inventory-customers", self.tenant_id), None)
        self._orders.clear()
        self._unsaved_orders.clear()
        self._holders.clear()
        self._no_holder.clear()
        self._no_order_of_quote.clear()

    # -- locking --------------------------------------------------------------------------

    async def lock_pennylane_intake(self) -> None:
        """Serialises the application of one tenant's Pennylane events across replicas, so two
        documents of one quote (or a product named twice) never create two records.
        Taken once per transaction (a consumer batch applies many events in one)."""
        marker = ("inventory-intake-locked", self.tenant_id)
        if marker in self.session.info:
            return
        self.session.info[marker] = True
        await self.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
            {"name": f"inventory-intake:{self.tenant_id}"},
        )

    # -- generic document rows ------------------------------------------------------------

    async def _one(
        self,
        kind: type[T],
        table: sa.Table,
        *conditions: sa.ColumnElement[bool],
        for_update: bool = False,
    ) -> T | None:
        query = sa.select(table.c.doc).where(table.c.tenant_id == self.tenant_id, *conditions)
        if for_update:
            query = query.with_for_update()
        doc = (await self.session.execute(query)).scalar_one_or_none()
        return None if doc is None else decode(kind, doc)

    async def _many(
        self, kind: type[T], table: sa.Table, *conditions: sa.ColumnElement[bool]
    ) -> list[T]:
        query = sa.select(table.c.doc).where(table.c.tenant_id == self.tenant_id, *conditions)
        return [decode(kind, doc) for doc in (await self.session.execute(query)).scalars()]

    async def _save(
        self, table: sa.Table, id_column: str, entity_id: UUID, doc: object, **lookups: Any
    ) -> None:
        """Insert or replace the document (a fixed statement per table and lookup columns:
        prepared once, no SQL compiled per call on the consumer's hot path)."""
        statement = _upsert_statement(table.name, id_column, tuple(lookups))
        await self.session.execute(
            statement,
            {
                "entity_id": entity_id,
                "tenant_id": self.tenant_id,
                "doc": dumps(doc),
                **lookups,
            },
        )

    # -- settings and locations -----------------------------------------------------------

    async def settings(self, *, for_update: bool = False) -> TenantSettings | None:
        return await self._one(TenantSettings, orm.tenant_settings, for_update=for_update)

    async def ensure_settings(self) -> TenantSettings:
        """The tenant's settings; created with the spec's defaults and a default location
        named "Principal" when a tenant is first seen. Read once per transaction."""
        cached = ("inventory-settings", self.tenant_id)
        if cached in self.session.info:
            known: TenantSettings = self.session.info[cached]
            return known
        settings = await self.settings()
        if settings is not None:
            self.session.info[cached] = settings
            return settings
        location = Location(uuid4(), self.tenant_id, DEFAULT_LOCATION_NAME)
        fresh = TenantSettings(self.tenant_id, location.location_id)
        created = await self.session.scalar(
            insert(orm.tenant_settings)
            .values(tenant_id=self.tenant_id, doc=encode(fresh))
            .on_conflict_do_nothing()
            .returning(orm.tenant_settings.c.tenant_id)
        )
        if created is None:  # a concurrent transaction created them first
            settings = await self.settings()
            assert settings is not None
            return settings
        await self.save_location(location)
        return fresh

    async def save_settings(self, settings: TenantSettings) -> None:
        self.session.info[("inventory-settings", self.tenant_id)] = settings
        await self.session.execute(
            sa.update(orm.tenant_settings)
            .where(orm.tenant_settings.c.tenant_id == self.tenant_id)
            .values(doc=encode(settings))
        )

    async def location(self, location_id: UUID, *, for_update: bool = False) -> Location | None:
        return await self._one(
            Location,
            orm.locations,
            orm.locations.c.location_id == location_id,
            for_update=for_update,
        )

    async def locations(self) -> list[Location]:
        return sorted(await self._many(Location, orm.locations), key=lambda loc: loc.name)

    async def save_location(self, location: Location) -> None:
        await self._save(orm.locations, "location_id", location.location_id, location)

    # -- products, customers, suppliers ---------------------------------------------------

    async def product(self, product_id: UUID, *, for_update: bool = False) -> Product | None:
        return await self._one(
            Product, orm.products, orm.products.c.product_id == product_id, for_update=for_update
        )

    async def products(self, product_ids: Iterable[UUID] | None = None) -> list[Product]:
        if product_ids is None:
            return sorted(await self._many(Product, orm.products), key=lambda p: p.name)
        return await self._many(Product, orm.products, orm.products.c.product_id.in_(product_ids))

    def _product_cache(self) -> dict[PennylaneId, Product]:
        """Products by Pennylane id already read or written in this transaction (a consumer
        batch names the same products again and again)."""
        cache: dict[PennylaneId, Product] = self.session.info.setdefault(
            ("inventory-products", self.tenant_id), {}
        )
        return cache

    async def products_by_pennylane_id(
        self, pennylane_ids: Iterable[PennylaneId], *, for_update: bool = False
    ) -> dict[PennylaneId, Product]:
        """Products by Pennylane id. A merged product's id is followed to the product it was
        merged into (documents naming either id move the original, rule 15); `for_update`
        reads (and locks) the records holding the ids themselves, merged or not."""
        ids = sorted(set(pennylane_ids))
        cache = self._product_cache()
        found = {} if for_update else {i: cache[i] for i in ids if i in cache}
        missing = [i for i in ids if i not in found]
        if missing:
            query = PRODUCTS_BY_PENNYLANE_ID_FOR_UPDATE if for_update else PRODUCTS_BY_PENNYLANE_ID
            rows = await self.session.execute(query, {"tenant_id": self.tenant_id, "ids": missing})
            merged: dict[PennylaneId, UUID] = {}
            for doc in rows.scalars():
                product = decode(Product, doc)
                assert product.pennylane_id is not None
                if product.merged_into is not None and not for_update:
                    merged[product.pennylane_id] = product.merged_into
                    continue
                found[product.pennylane_id] = cache[product.pennylane_id] = product
            if merged:
                targets = await self.merge_targets(set(merged.values()))
                for alias, target in merged.items():
                    if target in targets:
                        found[alias] = cache[alias] = targets[target]
        return found

    async def merge_targets(self, product_ids: set[UUID]) -> dict[UUID, Product]:
        """The products these were merged into, following merges of merges."""
        result: dict[UUID, Product] = {}
        for product in await self.products(product_ids):
            target = product
            for _ in range(100):
                if target.merged_into is None:
                    break
                following = await self.product(target.merged_into)
                if following is None:
                    break
                target = following
            result[product.product_id] = target
        return result

    async def merged_products(self) -> dict[UUID, UUID]:
        """Merged product → the product it was merged into (a small indexed read)."""
        rows = await self.session.execute(
            sa.select(orm.products.c.product_id, orm.products.c.merged_into).where(
                orm.products.c.tenant_id == self.tenant_id,
                orm.products.c.merged_into.is_not(None),
            )
        )
        return {row.product_id: row.merged_into for row in rows}

    async def products_with_sku_or_name(
        self, skus: Iterable[str], names: Iterable[str]
    ) -> list[Product]:
        """Products whose SKU or exact name is one of these (likely duplicates, rule 15)."""
        query = sa.select(orm.products.c.doc).where(
            orm.products.c.tenant_id == self.tenant_id,
            sa.or_(
                orm.products.c.doc["sku"].astext.in_(sorted(set(skus))),
                orm.products.c.doc["name"].astext.in_(sorted(set(names))),
            ),
        )
        return [decode(Product, doc) for doc in (await self.session.execute(query)).scalars()]

    async def pennylane_ids_of_products(self, product_ids: Iterable[UUID]) -> dict[UUID, int]:
        rows = await self.session.execute(
            sa.select(orm.products.c.product_id, orm.products.c.pennylane_id).where(
                orm.products.c.tenant_id == self.tenant_id,
                orm.products.c.product_id.in_(set(product_ids)),
                orm.products.c.pennylane_id.is_not(None),
            )
        )
        return {row.product_id: row.pennylane_id for row in rows}

    async def save_product(self, product: Product) -> None:
        if product.pennylane_id is not None:
            self._product_cache()[product.pennylane_id] = product
        await self._save(
            orm.products,
            "product_id",
            product.product_id,
            product,
            pennylane_id=product.pennylane_id,
            merged_into=product.merged_into,
        )

    async def customer(self, customer_id: UUID, *, for_update: bool = False) -> Customer | None:
        return await self._one(
            Customer,
            orm.customers,
            orm.customers.c.customer_id == customer_id,
            for_update=for_update,
        )

    def _customer_cache(self) -> dict[PennylaneId, Customer]:
        """Customers by Pennylane id already read or written in this transaction."""
        cache: dict[PennylaneId, Customer] = self.session.info.setdefault(
            ("inventory-customers", self.tenant_id), {}
        )
        return cache

    async def customers_by_pennylane_id(
        self, pennylane_ids: Iterable[PennylaneId]
    ) -> dict[PennylaneId, Customer]:
        ids = sorted(set(pennylane_ids))
        cache = self._customer_cache()
        missing = [i for i in ids if i not in cache]
        if missing:
            rows = await self.session.execute(
                CUSTOMERS_BY_PENNYLANE_ID, {"tenant_id": self.tenant_id, "ids": missing}
            )
            for doc in rows.scalars():
                customer = decode(Customer, doc)
                assert customer.pennylane_id is not None
                cache[customer.pennylane_id] = customer
        return {i: cache[i] for i in ids if i in cache}

    async def customer_by_pennylane_id(
        self, pennylane_id: PennylaneId, *, for_update: bool = False
    ) -> Customer | None:
        if not for_update:
            return (await self.customers_by_pennylane_id([pennylane_id])).get(pennylane_id)
        customer = await self._one(
            Customer,
            orm.customers,
            orm.customers.c.pennylane_id == pennylane_id,
            for_update=True,
        )
        if customer is not None:
            self._customer_cache()[pennylane_id] = customer
        return customer

    async def customers(self) -> list[Customer]:
        return sorted(await self._many(Customer, orm.customers), key=lambda c: c.name)

    async def save_customer(self, customer: Customer) -> None:
        if customer.pennylane_id is not None:
            self._customer_cache()[customer.pennylane_id] = customer
        await self._save(
            orm.customers,
            "customer_id",
            customer.customer_id,
            customer,
            pennylane_id=customer.pennylane_id,
        )

    async def supplier(self, supplier_id: UUID) -> Supplier | None:
        return await self._one(Supplier, orm.suppliers, orm.suppliers.c.supplier_id == supplier_id)

    async def suppliers(self) -> list[Supplier]:
        return sorted(await self._many(Supplier, orm.suppliers), key=lambda s: s.name)

    async def save_supplier(self, supplier: Supplier) -> None:
        await self._save(orm.suppliers, "supplier_id", supplier.supplier_id, supplier)

    # -- orders ---------------------------------------------------------------------------

    def _known_order(self, doc: Json) -> Order:
        """The map's instance of a loaded order (a row read again may be older than it)."""
        order_id = UUID(doc["order_id"])
        known = self._orders.get(order_id)
        if known is None:
            known = self._orders[order_id] = decode(Order, doc)
            for reference in known.sources:
                self._holders.setdefault(reference, order_id)
        return known

    async def order(self, order_id: UUID, *, for_update: bool = False) -> Order | None:
        if order_id in self._orders:
            return self._orders[order_id]
        await self.flush()
        query = sa.select(orm.orders.c.doc).where(
            orm.orders.c.tenant_id == self.tenant_id, orm.orders.c.order_id == order_id
        )
        if for_update:
            query = query.with_for_update()
        doc = (await self.session.execute(query)).scalar_one_or_none()
        return None if doc is None else self._known_order(doc)

    async def prefetch_orders(
        self, references: Iterable[str], quote_ids: Iterable[PennylaneId]
    ) -> None:
        """Load (and lock) at once every order holding one of `references` or made from one of
        `quote_ids`, and remember which of them have none: a batch's lookups then need no
        query."""
        wanted = sorted(set(references) - self._holders.keys())
        quotes = sorted(set(quote_ids))
        if not wanted and not quotes:
            return
        await self.flush()
        rows = await self.session.execute(
            ORDERS_HOLDING_OR_OF_QUOTES_FOR_UPDATE,
            {"tenant_id": self.tenant_id, "references": wanted, "quote_ids": quotes},
        )
        for doc, reference in rows:
            order = self._known_order(doc)
            if reference is not None:
                self._holders.setdefault(reference, order.order_id)
        self._no_holder.update(r for r in wanted if r not in self._holders)
        with_order = {o.quote_id for o in self._orders.values() if o.quote_id is not None}
        self._no_order_of_quote.update(q for q in quotes if q not in with_order)

    async def order_holding(
        self, kind: DocumentKind, pennylane_id: PennylaneId, *, for_update: bool = False
    ) -> Order | None:
        reference = document_reference(kind, pennylane_id)
        if reference in self._holders:
            return self._orders[self._holders[reference]]
        if reference in self._no_holder:
            return None
        await self.flush()
        doc = (
            await self.session.execute(
                ORDER_HOLDING_FOR_UPDATE if for_update else ORDER_HOLDING,
                {"tenant_id": self.tenant_id, "reference": reference},
            )
        ).scalar_one_or_none()
        if doc is None:
            return None
        order = self._known_order(doc)
        self._holders.setdefault(reference, order.order_id)
        return order

    async def order_of_quote(
        self, quote_id: PennylaneId, *, for_update: bool = False
    ) -> Order | None:
        known = min(
            (order for order in self._orders.values() if order.quote_id == quote_id),
            key=lambda order: order.order_id,
            default=None,
        )
        if known is not None:
            return known
        if quote_id in self._no_order_of_quote:
            return None
        await self.flush()
        query = (
            sa.select(orm.orders.c.doc)
            .where(orm.orders.c.tenant_id == self.tenant_id, orm.orders.c.quote_id == quote_id)
            .order_by(orm.orders.c.order_id)
            .limit(1)
        )
        if for_update:
            query = query.with_for_update()
        doc = (await self.session.execute(query)).scalar_one_or_none()
        return None if doc is None else self._known_order(doc)

    async def orders(self, *, status: str | None = None) -> list[Order]:
        await self.flush()
        conditions = [] if status is None else [orm.orders.c.status == status]
        found = await self._many(Order, orm.orders, *conditions)
        return sorted(found, key=lambda order: order.created_at)

    async def save_order(self, order: Order) -> None:
        """Stage the order; it is written by `flush` (the unit of work calls it)."""
        self._orders[order.order_id] = order
        self._unsaved_orders[order.order_id] = order
        for reference in order.sources:
            self._holders.setdefault(reference, order.order_id)

    async def flush(self) -> None:
        """Write the staged orders: one statement for the rows, one for their documents."""
        if not self._unsaved_orders:
            return
        orders = sorted(self._unsaved_orders.values(), key=lambda order: order.order_id)
        self._unsaved_orders.clear()
        await self.session.execute(
            SAVE_ORDERS,
            {
                "tenant_id": self.tenant_id,
                "order_ids": [order.order_id for order in orders],
                "quote_ids": [
                    None if order.pennylane_unlinked else order.quote_id for order in orders
                ],
                "statuses": [order.status.value for order in orders],
                "docs": [dumps(order) for order in orders],
            },
        )
        held = [
            (reference, order.order_id)
            for order in orders
            if not order.pennylane_unlinked
            for reference in order.sources
        ]
        if held:
            await self.session.execute(
                HOLD_DOCUMENTS,
                {
                    "tenant_id": self.tenant_id,
                    "references": [reference for reference, _ in held],
                    "order_ids": [order_id for _, order_id in held],
                },
            )

    # -- returns and purchases ------------------------------------------------------------

    async def return_(self, return_id: UUID, *, for_update: bool = False) -> Return | None:
        return await self._one(
            Return, orm.returns, orm.returns.c.return_id == return_id, for_update=for_update
        )

    async def return_of_credit_note(
        self, credit_note_id: PennylaneId, *, for_update: bool = False
    ) -> Return | None:
        return await self._one(
            Return,
            orm.returns,
            orm.returns.c.credit_note_id == credit_note_id,
            for_update=for_update,
        )

    async def returns(self) -> list[Return]:
        return sorted(await self._many(Return, orm.returns), key=lambda r: r.created_at)

    async def save_return(self, return_: Return) -> None:
        await self._save(
            orm.returns,
            "return_id",
            return_.return_id,
            return_,
            credit_note_id=None if return_.pennylane_unlinked else return_.credit_note_id,
        )

    async def purchase(self, purchase_id: UUID, *, for_update: bool = False) -> Purchase | None:
        return await self._one(
            Purchase,
            orm.purchases,
            orm.purchases.c.purchase_id == purchase_id,
            for_update=for_update,
        )

    async def purchase_of_receipt(
        self, receipt_id: UUID, *, for_update: bool = False
    ) -> Purchase | None:
        owner = sa.select(orm.purchase_receipts.c.purchase_id).where(
            orm.purchase_receipts.c.tenant_id == self.tenant_id,
            orm.purchase_receipts.c.receipt_id == receipt_id,
        )
        return await self._one(
            Purchase,
            orm.purchases,
            orm.purchases.c.purchase_id == owner.scalar_subquery(),
            for_update=for_update,
        )

    async def purchases(self) -> list[Purchase]:
        return sorted(await self._many(Purchase, orm.purchases), key=lambda p: p.placed_at)

    async def save_purchase(self, purchase: Purchase) -> None:
        await self._save(orm.purchases, "purchase_id", purchase.purchase_id, purchase)
        if purchase.receipts:
            await self.session.execute(
                insert(orm.purchase_receipts)
                .values(
                    [
                        {
                            "receipt_id": receipt.receipt_id,
                            "tenant_id": self.tenant_id,
                            "purchase_id": purchase.purchase_id,
                        }
                        for receipt in purchase.receipts
                    ]
                )
                .on_conflict_do_nothing()
            )

    async def lock_level(self, product_id: UUID, location_id: UUID) -> StockLevel | None:
        """The current level under its row lock (None when nothing was ever posted there)."""
        row = (
            await self.session.execute(
                sa.select(orm.stock_levels)
                .where(
                    orm.stock_levels.c.tenant_id == self.tenant_id,
                    orm.stock_levels.c.product_id == str(product_id),
                    orm.stock_levels.c.location_id == str(location_id),
                )
                .with_for_update()
            )
        ).one_or_none()
        if row is None:
            return None
        return StockLevel(
            self.tenant_id, product_id, location_id, row.real, row.reserved, row.incoming
        )

    # -- outbound write status ------------------------------------------------------------

    async def record_write_status(
        self,
        entity_kind: str,
        entity_id: str,
        status: str,
        *,
        pennylane_id: int | None = None,
        reason: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        values = {
            "tenant_id": self.tenant_id,
            "entity_kind": entity_kind,
            "entity_id": entity_id,
            "status": status,
            "pennylane_id": pennylane_id,
            "reason": reason,
            "retryable": retryable,
        }
        statement = insert(orm.write_status).values(values)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[
                    orm.write_status.c.tenant_id,
                    orm.write_status.c.entity_kind,
                    orm.write_status.c.entity_id,
                ],
                set_={
                    **{name: statement.excluded[name] for name in values if name != "tenant_id"},
                    "reported_at": sa.func.now(),
                },
            )
        )

    async def write_statuses(self, *, failed_only: bool = False) -> Sequence[sa.Row[Any]]:
        query = sa.select(orm.write_status).where(orm.write_status.c.tenant_id == self.tenant_id)
        if failed_only:
            query = query.where(orm.write_status.c.status == "failed")
        query = query.order_by(orm.write_status.c.reported_at.desc())
        return (await self.session.execute(query)).all()
