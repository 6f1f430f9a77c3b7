"""Kafka over SASL_SSL: a private broker (never the shared one) with a SCRAM user and a CA made at
its start; the inventory service runs on it as a process (FastStream consumer, producer, admin
client) with its outbox relay as a process beside it, and a wrong password is refused with the
broker's reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from stockpit_contracts import new_event, parse_event, partition_key
from stockpit_contracts.payloads.documents import (
    DocumentKind,
    DocumentLine,
    DocumentVersionRead,
    ProductRef,
)
from stockpit_contracts.payloads.inventory import StockChanged
from stockpit_contracts.topics import INVENTORY_STOCK, PENNYLANE_DOCUMENTS
from stockpit_ops.infra import PrivateSecureKafka, private_secure_kafka
from stockpit_ops.processes import relay_process, service_process
from stockpit_runtime.kafka import KafkaAccessError, ensure_topics
from stockpit_testing.fixtures import publish_raw, read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
def secure_kafka() -> Iterator[PrivateSecureKafka]:
    with private_secure_kafka() as kafka:
        yield kafka


def _invoice() -> bytes:
    document = DocumentVersionRead(
        kind=DocumentKind.INVOICE,
        pennylane_id=501,
        draft=False,
        updated_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
        lines=(
            DocumentLine(
                pennylane_line_id=1,
                label="Chaise",
                quantity=Decimal(3),
                product=ProductRef(pennylane_id=7, label="Chaise", ledger_account_number="707000"),
            ),
        ),
    )
    return new_event(document, "tenant-a").to_json()


async def test_a_service_runs_end_to_end_over_sasl_ssl(
    secure_kafka: PrivateSecureKafka,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    security = secure_kafka.security()
    env = {
        **security.environment(),
        "KAFKA_BOOTSTRAP_SERVERS": secure_kafka.bootstrap_servers,
        "DATABASE_URL": database_url,
        "STOCKPIT_TOPIC_PREFIX": topic_prefix,
        "STOCKPIT_DB_SCHEMA": db_schema,
    }
    inventory = service_process("inventory", env=env, log_dir=tmp_path)
    relay = relay_process("inventory", env=env, log_dir=tmp_path)
    inventory.start()
    relay.start()
    try:
        await publish_raw(
            secure_kafka.bootstrap_servers,
            PENNYLANE_DOCUMENTS.name(topic_prefix),
            partition_key("tenant-a"),
            _invoice(),
            security=security,
        )
        records = await read_topic(
            secure_kafka.bootstrap_servers,
            INVENTORY_STOCK.name(topic_prefix),
            expect=1,
            timeout_s=60,
            security=security,
        )
    finally:
        relay.stop()
        inventory.stop()
    changes = [parse_event(record.value).payload for record in records]
    assert changes, f"no stock event over SASL_SSL; relay log:\n{relay.tail(40)}"
    assert isinstance(changes[0], StockChanged)
    assert changes[0].real == Decimal(-3)


async def test_a_wrong_password_is_refused_with_the_brokers_reason(
    secure_kafka: PrivateSecureKafka, topic_prefix: str, tmp_path: Path, database_url: str
) -> None:
    wrong = secure_kafka.security(password="not-the-password")
    with pytest.raises(KafkaAccessError) as refused:
        await ensure_topics(secure_kafka.bootstrap_servers, [f"{topic_prefix}x"], security=wrong)
    message = str(refused.value)
    assert "Authentication failed" in message
    assert "as 'stockpit' (SCRAM-SHA-512)" in message
    assert "not-the-password" not in message

    # A service given that password stops at start with the same reason.
    env = {
        **wrong.environment(),
        "KAFKA_BOOTSTRAP_SERVERS": secure_kafka.bootstrap_servers,
        "DATABASE_URL": database_url,
        "STOCKPIT_TOPIC_PREFIX": topic_prefix,
    }
    inventory = service_process("inventory", env=env, log_dir=tmp_path)
    with pytest.raises(RuntimeError, match="exited"):
        inventory.start(timeout_s=60)
    inventory.stop()
    assert "Authentication failed" in inventory.log_path.read_text()
