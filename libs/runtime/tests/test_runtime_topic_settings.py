"""Topics the services create carry the replication settings (`STOCKPIT_TOPIC_*`), on real Kafka."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic import ValidationError
from stockpit_contracts.sizes import MAX_MESSAGE_BYTES
from stockpit_runtime.kafka import ensure_topics
from stockpit_runtime.settings import ServiceSettings


def test_replication_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = ServiceSettings()
    assert (defaults.topic_replication_factor, defaults.topic_min_insync_replicas) == (1, 1)
    monkeypatch.setenv("STOCKPIT_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("STOCKPIT_TOPIC_MIN_INSYNC_REPLICAS", "2")
    cluster = ServiceSettings()
    assert (cluster.topic_replication_factor, cluster.topic_min_insync_replicas) == (3, 2)


def test_more_insync_replicas_than_replicas_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STOCKPIT_TOPIC_MIN_INSYNC_REPLICAS", "2")
    with pytest.raises(ValidationError, match="STOCKPIT_TOPIC_MIN_INSYNC_REPLICAS"):
        ServiceSettings()


async def test_ensure_topics_refuses_more_insync_replicas_than_replicas() -> None:
    with pytest.raises(ValueError, match=r"min\.insync\.replicas"):
        await ensure_topics("127.0.0.1:1", ["never.created"], min_insync_replicas=2)


@pytest.mark.integration
async def test_created_topics_carry_their_replication_settings(
    kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}stockpit.replication"
    await ensure_topics(
        kafka_bootstrap_servers, [topic], partitions=1, replication_factor=1, min_insync_replicas=1
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        # A new topic's partitions reach the metadata a moment after the creation's answer.
        for _ in range(100):
            (described,) = await admin.describe_topics([topic])
            if described["partitions"]:
                break
            await asyncio.sleep(0.1)
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    assert [len(partition["replicas"]) for partition in described["partitions"]] == [1]
    configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
    assert configs["min.insync.replicas"] == "1"
    assert configs["max.message.bytes"] == str(MAX_MESSAGE_BYTES)
