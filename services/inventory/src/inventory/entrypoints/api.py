"""Inventory's HTTP API (queries and Stockpit-side commands)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel
from stockpit_runtime.service import ServiceRuntime

from inventory.adapters.orm import stock_levels

router = APIRouter(tags=["stock"])


class StockLevel(BaseModel):
    product_id: str
    location_id: str
    real: Decimal
    reserved: Decimal
    available: Decimal
    incoming: Decimal


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


@router.get("/tenants/{tenant_id}/stock", response_model=list[StockLevel])
async def stock_of_tenant(tenant_id: str, request: Request) -> list[StockLevel]:
    """Stock per product and location: real, reserved, available (= real − reserved), incoming."""
    async with _runtime(request).sessions() as session:
        rows = (
            await session.execute(
                sa.select(stock_levels)
                .where(stock_levels.c.tenant_id == tenant_id)
                .order_by(stock_levels.c.product_id, stock_levels.c.location_id)
            )
        ).all()
    return [
        StockLevel(
            product_id=row.product_id,
            location_id=row.location_id,
            real=row.real,
            reserved=row.reserved,
            available=row.real - row.reserved,
            incoming=row.incoming,
        )
        for row in rows
    ]
