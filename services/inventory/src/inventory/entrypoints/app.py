"""The inventory service process: Kafka consumers, outbox relay and HTTP API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_contracts import Envelope, Payload
from stockpit_contracts.topics import PENNYLANE_DOCUMENTS
from stockpit_runtime.service import ServiceRuntime, create_service_app, serve
from stockpit_runtime.settings import ServiceSettings

from inventory.entrypoints.api import router as api_router
from inventory.service_layer.documents import apply_document_event

MIGRATIONS = Path(__file__).resolve().parents[1] / "adapters" / "migrations"


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    http_port: int = 8020


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()
    prefix = settings.topic_prefix

    async def on_document(session: AsyncSession, event: Envelope[Payload]) -> None:
        await apply_document_event(session, event, topic_prefix=prefix)

    def setup(runtime: ServiceRuntime) -> None:
        runtime.subscribe(PENNYLANE_DOCUMENTS.name(prefix), on_document, purpose="documents")

    return create_service_app(
        settings,
        title="Stockpit inventory",
        description="Stock per product and location, orders, deliveries, returns and purchases.",
        migrations=MIGRATIONS,
        setup=setup,
        api=api_router,
    )


def main() -> None:
    settings = InventorySettings()
    serve(create_app(settings), settings)
