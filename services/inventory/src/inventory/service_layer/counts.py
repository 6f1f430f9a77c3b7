"""Stock count import (rule 17): preview the differences, or apply them in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import sqlalchemy as sa
from stockpit_contracts.ids import new_uuid

from inventory.adapters.orm import stock_levels
from inventory.domain.commands import ImportCount
from inventory.domain.stock import StockKey
from inventory.domain.stock_count import (
    CountLine,
    check_count,
    count_outcome,
    decode_file,
    parse_count,
)
from inventory.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class CountResult:
    count_id: UUID | None  # None for a preview: nothing was applied
    lines: list[CountLine]

    @property
    def changed(self) -> int:
        return sum(1 for line in self.lines if line.difference != 0)


async def import_count(command: ImportCount, uow: UnitOfWork) -> CountResult:
    """Check the whole file against the catalog and the current real stock (CountRefused
    lists every bad row); applied, each difference is a ledger entry of cause "count"."""
    apply, note = command.apply, command.note
    rows = parse_count(decode_file(command.data))
    repo = uow.repo
    await repo.ensure_settings()
    if apply:
        # Pennylane documents of this tenant wait: the count is of the stock as it is now.
        await repo.lock_pennylane_intake()
    products = await repo.products()
    locations = await repo.locations()
    real = await _real_stock(uow, lock=apply)
    lines = check_count(rows, products, locations, real)
    if not apply:
        return CountResult(None, lines)
    count_id = new_uuid()
    uow.know_products(products)
    await uow.post(count_outcome(count_id, lines, note))
    return CountResult(count_id, lines)


async def _real_stock(uow: UnitOfWork, *, lock: bool) -> dict[StockKey, Decimal]:
    query = sa.select(
        stock_levels.c.product_id, stock_levels.c.location_id, stock_levels.c.real
    ).where(stock_levels.c.tenant_id == uow.tenant_id)
    if lock:
        # In key order, as the levels' upsert takes them: two writers never wait on each other.
        query = query.order_by(stock_levels.c.product_id, stock_levels.c.location_id)
        query = query.with_for_update()
    return {
        StockKey(UUID(product_id), UUID(location_id)): real
        for product_id, location_id, real in await uow.session.execute(query)
    }
