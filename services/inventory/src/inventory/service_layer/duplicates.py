"""Rule 15 in the service layer: products created from Pennylane are checked for likely
duplicates before their unit of work writes, and a user's merge (the HTTP API calls `merge`)."""

from __future__ import annotations

from uuid import UUID

from inventory.adapters import stock_store
from inventory.domain.catalog import Product
from inventory.domain.commands import MergeProducts
from inventory.domain.duplicates import Merge, flag_duplicates, merge
from inventory.domain.errors import DomainError
from inventory.domain.events import CreatedBecause, DomainEvent, ProductCreated
from inventory.domain.stock import StockLevel
from inventory.service_layer.handlers import NotFound
from inventory.service_layer.unit_of_work import UnitOfWork

FROM_PENNYLANE = {CreatedBecause.IMPORTED, CreatedBecause.NAMED_ON_DOCUMENT}


async def flag_created_products(uow: UnitOfWork, events: list[DomainEvent]) -> None:
    """Flag the products these events say were created from Pennylane when they likely
    duplicate one of the tenant's products; one query for the whole unit of work."""
    created = [
        event.pennylane_id
        for event in events
        if isinstance(event, ProductCreated)
        and event.because in FROM_PENNYLANE
        and event.pennylane_id is not None
    ]
    if not created:
        return
    by_id = await uow.repo.products_by_pennylane_id(created)
    new = [by_id[i] for i in created if i in by_id]
    candidates = await uow.repo.products_with_sku_or_name(
        (p.sku for p in new if p.sku), (p.name for p in new)
    )
    reports = flag_duplicates(new, candidates)
    for product in new:
        if product.likely_duplicate_of is not None:
            await uow.repo.save_product(product)
    uow.collect(reports)


async def merge_products(command: MergeProducts, uow: UnitOfWork) -> Merge:
    """Merge the duplicate into the original. Under the tenant's intake lock, so no Pennylane
    document moves either product's stock meanwhile; the duplicate's levels are locked too."""
    duplicate_id, original_id = command.duplicate_id, command.original_id
    repo = uow.repo
    await repo.lock_pennylane_intake()
    await repo.ensure_settings()
    if duplicate_id == original_id:
        raise DomainError("a product cannot be merged into itself")
    found: dict[UUID, Product] = {}
    for product_id in sorted((duplicate_id, original_id)):  # one lock order: no deadlock
        product = await repo.product(product_id, for_update=True)
        if product is None:
            raise NotFound(f"product {product_id} not found")
        found[product_id] = product
    levels: list[StockLevel] = []
    for row in await stock_store.levels(uow.session, uow.tenant_id, product_id=duplicate_id):
        level = await repo.lock_level(duplicate_id, UUID(row.location_id))
        if level is not None:
            levels.append(level)
    result = merge(found[duplicate_id], found[original_id], levels)
    # The duplicate first: a Pennylane id the original takes over must leave it before.
    await repo.save_product(result.duplicate)
    await repo.save_product(result.original)
    uow.know_products([result.original])
    await uow.post(result.outcome)
    return result
