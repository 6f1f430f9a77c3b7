"""Moving stock: one ledger entry and the level it changes, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_contracts import EnvelopeMeta, new_event, partition_key
from stockpit_contracts.payloads.inventory import StockChanged
from stockpit_contracts.topics import INVENTORY_STOCK
from stockpit_runtime.outbox import add_to_outbox

from inventory.adapters.orm import stock_ledger, stock_levels

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class StockMove:
    product_id: str
    location_id: str
    delta_real: Decimal = ZERO
    delta_reserved: Decimal = ZERO
    delta_incoming: Decimal = ZERO
    cause: str = ""
    pennylane_product_id: int | None = None


async def apply_stock_move(
    session: AsyncSession,
    tenant_id: str,
    move: StockMove,
    *,
    topic_prefix: str,
    caused_by: EnvelopeMeta | None = None,
) -> StockChanged:
    """Append to the ledger, update the level atomically, stage a stock-changed event."""
    entry_id = await session.scalar(
        sa.insert(stock_ledger)
        .values(
            tenant_id=tenant_id,
            product_id=move.product_id,
            location_id=move.location_id,
            delta_real=move.delta_real,
            delta_reserved=move.delta_reserved,
            delta_incoming=move.delta_incoming,
            cause=move.cause,
        )
        .returning(stock_ledger.c.id)
    )
    # One statement, so concurrent moves on the same row serialise on its row lock.
    upsert = insert(stock_levels).values(
        tenant_id=tenant_id,
        product_id=move.product_id,
        location_id=move.location_id,
        real=move.delta_real,
        reserved=move.delta_reserved,
        incoming=move.delta_incoming,
    )
    level = (
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[
                    stock_levels.c.tenant_id,
                    stock_levels.c.product_id,
                    stock_levels.c.location_id,
                ],
                set_={
                    "real": stock_levels.c.real + upsert.excluded.real,
                    "reserved": stock_levels.c.reserved + upsert.excluded.reserved,
                    "incoming": stock_levels.c.incoming + upsert.excluded.incoming,
                },
            ).returning(stock_levels.c.real, stock_levels.c.reserved, stock_levels.c.incoming)
        )
    ).one()
    changed = StockChanged(
        product_id=move.product_id,
        pennylane_product_id=move.pennylane_product_id,
        location_id=move.location_id,
        real=level.real,
        reserved=level.reserved,
        available=level.real - level.reserved,
        incoming=level.incoming,
        delta_real=move.delta_real,
        delta_reserved=move.delta_reserved,
        delta_incoming=move.delta_incoming,
        cause=move.cause,
        ledger_entry_id=str(entry_id),
    )
    await add_to_outbox(
        session,
        INVENTORY_STOCK.name(topic_prefix),
        partition_key(tenant_id, move.product_id),
        [new_event(changed, tenant_id, caused_by=caused_by)],
    )
    return changed
