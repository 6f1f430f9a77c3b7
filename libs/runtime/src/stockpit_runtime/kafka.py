"""Kafka clients as this system uses them: idempotent producers, topics created up front."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from stockpit_contracts import ALL_TOPICS
from stockpit_contracts.sizes import MAX_MESSAGE_BYTES


def reliable_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    """acks=all with idempotence: a send that is retried is written once, in order."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        # Record batches of up to 256 KiB (not 16): the outbox relay sends thousands of small
        # events at once, and each batch is one round trip to the broker (its limit is 1 MiB).
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
        max_request_size=MAX_MESSAGE_BYTES,
    )


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
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
    async with asyncio.timeout(timeout_s):
        await admin.start()
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


async def delete_topics(bootstrap_servers: str, prefix: str, *, timeout_s: float = 30) -> None:
    """Delete every topic whose name starts with `prefix` (a test's or a whole run's)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
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
