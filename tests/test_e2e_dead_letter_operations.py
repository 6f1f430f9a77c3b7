"""Operators list a service's dead letters over HTTP and replay one through Kafka."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from stockpit_contracts import partition_key
from stockpit_contracts.topics import PENNYLANE_DOCUMENTS
from stockpit_testing.fixtures import authorized_client, publish_raw

pytestmark = pytest.mark.integration


async def _dead_letters(client: httpx.AsyncClient, **params: str) -> list[dict[str, object]]:
    response = await client.get("/operations/dead-letters", params=params)
    response.raise_for_status()
    rows: list[dict[str, object]] = response.json()
    return rows


async def test_a_dead_letter_is_listed_with_its_reason_and_replayed_through_its_topic(
    inventory: FastAPI, kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    topic = PENNYLANE_DOCUMENTS.name(topic_prefix)
    await publish_raw(kafka_bootstrap_servers, topic, partition_key("tenant-a"), b"\xff\xfe")
    async with authorized_client(inventory, "http://inventory") as client:
        async with asyncio.timeout(30):
            while not (listed := await _dead_letters(client)):
                await asyncio.sleep(0.1)
        [dead] = listed
        assert dead["topic"] == topic
        assert "not JSON" in str(dead["reason"])
        assert dead["attempts"] == 1

        replay = await client.post(f"/operations/dead-letters/{dead['id']}/replay")
        assert replay.status_code == 202
        again = await client.post(f"/operations/dead-letters/{dead['id']}/replay")
        assert again.status_code == 409, "a dead letter is replayed once"
        missing = await client.post("/operations/dead-letters/999999/replay")
        assert missing.status_code == 404

        # The replayed copy is consumed again (still broken) at a new offset.
        async with asyncio.timeout(30):
            while len(everything := await _dead_letters(client, include_replayed="true")) < 2:
                await asyncio.sleep(0.1)
        offsets = sorted(int(str(row["offset"])) for row in everything)
        assert offsets[1] > offsets[0]
        assert [row["offset"] for row in await _dead_letters(client)] == [offsets[1]]
