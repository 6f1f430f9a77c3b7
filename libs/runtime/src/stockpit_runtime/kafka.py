"""Kafka clients as this system uses them: idempotent producers, topics created up front."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from stockpit_contracts import ALL_TOPICS
from stockpit_contracts.sizes import MAX_MESSAGE_BYTES

from stockpit_runtime.kafka_security import KafkaSecurity, kafka_options


def reliable_producer(
    bootstrap_servers: str, client_id: str, security: KafkaSecurity | None = None
) -> AIOKafkaProducer:
    """acks=all with idempotence: a send that is retried is written once, in order.

    `security`: the service's Kafka security settings (default: those of the environment)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        **kafka_options(security),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        # Record batches of up to 256 KiB (not 16): the outbox relay sends thousands of small
        # events at once, and each batch is one request to the broker (its limit is 1 MiB).
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
        max_request_size=MAX_MESSAGE_BYTES,
    )


class KafkaAccessError(RuntimeError):
    """The broker cannot be used with these settings (credentials, CA, protocol, address)."""


async def check_kafka_access(
    bootstrap_servers: str, security: KafkaSecurity | None = None, *, timeout_s: float = 15
) -> None:
    """Connect to the first bootstrap server as every client will, and raise `KafkaAccessError`
    with the broker's own reason when it refuses (a client library only logs that reason and
    then says it could not bootstrap)."""
    security = security if security is not None else KafkaSecurity()
    first = bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    options = security.client_options()
    try:
        async with asyncio.timeout(timeout_s):
            connection = await create_conn(
                host, int(port), request_timeout_ms=int(timeout_s * 1000), **options
            )
    except (KafkaError, OSError, TimeoutError) as exc:
        who = (
            f" as {security.sasl_username!r} ({security.sasl_mechanism})"
            if security.uses_sasl
            else ""
        )
        raise KafkaAccessError(
            f"Kafka at {first} refused a {security.security_protocol} connection{who}: "
            f"{exc or type(exc).__name__}; check KAFKA_BOOTSTRAP_SERVERS and the "
            "STOCKPIT_KAFKA_* security settings"
        ) from None
    connection.close()


def system_topic_names(prefix: str) -> list[str]:
    names = []
    for topic in ALL_TOPICS:
        names += [topic.name(prefix), topic.dead_letters(prefix)]
    return names


async def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    *,
    partitions: int = 6,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    timeout_s: float = 60,
    security: KafkaSecurity | None = None,
) -> None:
    """Create the topics that do not exist yet (replication 1 by default: the local broker is one
    node), with `max.message.bytes` set explicitly: the size every message was checked against
    (`stockpit_contracts.sizes`), whatever the broker's default; and `min.insync.replicas`, the
    replicas an acks=all write waits for."""
    if min_insync_replicas > replication_factor:
        raise ValueError(
            f"min.insync.replicas ({min_insync_replicas}) above the replication factor"
            f" ({replication_factor}): no write could ever be acknowledged"
        )
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000, **kafka_options(security)
    )
    async with asyncio.timeout(timeout_s):
        try:
            await admin.start()
        except KafkaConnectionError:
            await check_kafka_access(bootstrap_servers, security)  # raises with the reason
            raise
        try:
            existing = set(await admin.list_topics())
            wanted = [
                NewTopic(
                    name=name,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs={
                        "max.message.bytes": str(MAX_MESSAGE_BYTES),
                        "min.insync.replicas": str(min_insync_replicas),
                    },
                )
                for name in sorted(set(names) - existing)
            ]
            if wanted:
                # Another replica may have created them first.
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(wanted)
        finally:
            await admin.close()


async def delete_topics(
    bootstrap_servers: str,
    prefix: str,
    *,
    timeout_s: float = 30,
    security: KafkaSecurity | None = None,
) -> None:
    """Delete every topic whose name starts with `prefix` (a test's or a whole run's)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000, **kafka_options(security)
    )
    async with asyncio.timeout(timeout_s):
        await admin.start()
        try:
            names = [name for name in await admin.list_topics() if name.startswith(prefix)]
            if names:
                await admin.delete_topics(names)
        finally:
            await admin.close()


async def broker_reachable(producer: AIOKafkaProducer, timeout_s: float = 5) -> None:
    """Raise unless the broker answers a metadata request through the service's own producer."""
    async with asyncio.timeout(timeout_s):
        await producer.client.fetch_all_metadata()
