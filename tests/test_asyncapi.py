"""Each service's `/asyncapi.json` lists every topic it consumes and every topic it produces
(through its outbox), each with the JSON Schema of the `libs/contracts` envelopes it carries.

The apps are built and asked in-process, without their lifespan: no broker, no database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI
from inventory.entrypoints.app import InventorySettings
from inventory.entrypoints.app import create_app as inventory_app
from outbound.entrypoints.app import OutboundSettings
from outbound.entrypoints.app import create_app as outbound_app
from poller.entrypoints.app import PollerSettings
from poller.entrypoints.app import create_app as poller_app
from pydantic import BaseModel
from stockpit_connections import TokenCipher
from stockpit_contracts import PAYLOAD_TYPES, Topic
from stockpit_contracts.events import envelope_type
from stockpit_contracts.payloads.dead_letters import DeadLetter
from stockpit_contracts.topics import (
    CONNECTION_COMMANDS,
    CONNECTION_EVENTS,
    INVENTORY_PROBLEMS,
    INVENTORY_SETTINGS,
    INVENTORY_STOCK,
    OUTBOUND_REQUESTS,
    OUTBOUND_RESULTS,
    PENNYLANE_CATALOG,
    PENNYLANE_DOCUMENTS,
    POLLER_SYNC_RUNS,
)

PREFIX = "asyncapi-test."
# Nothing listens there: building an app connects to nothing.
NOWHERE: dict[str, Any] = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    "DATABASE_URL": "postgresql+asyncpg://nobody:secret@127.0.0.1:9/nothing",
    "topic_prefix": PREFIX,
}


def _poller() -> FastAPI:
    return poller_app(PollerSettings(**NOWHERE, token_key=TokenCipher.generate_key()))


def _inventory() -> FastAPI:
    return inventory_app(InventorySettings(**NOWHERE))


def _outbound() -> FastAPI:
    return outbound_app(OutboundSettings(**NOWHERE, token_key=TokenCipher.generate_key()))


# What each service consumes (in batches or not) and produces, as the architecture says.
SERVICES: dict[str, tuple[Callable[[], FastAPI], dict[Topic, bool], list[Topic]]] = {
    "poller": (
        _poller,
        {CONNECTION_COMMANDS: False, INVENTORY_SETTINGS: False},
        [PENNYLANE_DOCUMENTS, PENNYLANE_CATALOG, POLLER_SYNC_RUNS, CONNECTION_EVENTS],
    ),
    "inventory": (
        _inventory,
        {
            PENNYLANE_DOCUMENTS: True,
            PENNYLANE_CATALOG: False,
            OUTBOUND_RESULTS: False,
            POLLER_SYNC_RUNS: False,
            CONNECTION_EVENTS: False,
        },
        [INVENTORY_STOCK, INVENTORY_PROBLEMS, INVENTORY_SETTINGS, OUTBOUND_REQUESTS],
    ),
    "outbound": (
        _outbound,
        {OUTBOUND_REQUESTS: False, CONNECTION_EVENTS: False},
        [OUTBOUND_RESULTS],
    ),
}


def _inline(schema: Any, lookup: Callable[[str], dict[str, Any]]) -> Any:
    """`schema` with every `$ref` replaced by what it points at, and no `$defs`."""
    if isinstance(schema, list):
        return [_inline(item, lookup) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _inline(lookup(schema["$ref"]), lookup)
    return {key: _inline(value, lookup) for key, value in schema.items() if key != "$defs"}


def _contract_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    return _inline(schema, lambda ref: defs[ref.removeprefix("#/$defs/")])  # type: ignore[no-any-return]


def _payloads_by_topic(document: dict[str, Any], action: str) -> dict[str, Any]:
    """Topic → the inlined payload schema of the messages of operations doing `action`."""

    def lookup(ref: str) -> dict[str, Any]:
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
        # A channel's message is itself a reference to the message in `components`.
        return lookup(node["$ref"]) if "$ref" in node else node

    found: dict[str, Any] = {}
    for operation in document["operations"].values():
        if operation["action"] != action:
            continue
        channel = lookup(operation["channel"]["$ref"])
        [message] = operation["messages"]
        topic = channel["bindings"]["kafka"]["topic"]
        assert channel["address"] == topic
        assert topic not in found, f"{topic} is documented twice"
        found[topic] = _inline(lookup(message["$ref"])["payload"], lookup)
    return found


def _envelopes_of(topic: Topic) -> list[dict[str, Any]]:
    """The envelope schemas, in `libs/contracts`, of every payload type `topic` carries."""
    carried = [p for p in PAYLOAD_TYPES.values() if topic == p.TOPIC]
    assert carried, f"no payload type is on {topic.base_name}"
    return [_contract_schema(envelope_type(p)) for p in carried]


def _options(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas a payload may be: one, or each of several (anyOf / oneOf)."""
    for word in ("anyOf", "oneOf"):
        if word in payload:
            return list(payload[word])
    return [payload]


def _by_title(schemas: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    titles = [schema["title"] for schema in schemas]
    assert len(set(titles)) == len(titles), titles
    return dict(zip(titles, schemas, strict=True))


async def _asyncapi(app: FastAPI) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.get("/asyncapi.json")
        assert response.status_code == 200, response.text
        html = await client.get("/asyncapi")
        assert html.status_code == 200, html.text
        return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_asyncapi_names_the_contract_schema_of_every_topic_consumed_and_produced(
    service: str,
) -> None:
    build, consumed, produced = SERVICES[service]
    document = await _asyncapi(build())
    received = _payloads_by_topic(document, "receive")
    sent = _payloads_by_topic(document, "send")

    assert set(received) == {topic.name(PREFIX) for topic in consumed}
    for topic, batched in consumed.items():
        payload = received[topic.name(PREFIX)]
        if batched:
            assert payload["type"] == "array", payload
            payload = payload["items"]
        assert _by_title(_options(payload)) == _by_title(_envelopes_of(topic)), topic

    dead_letter_topics = {topic.dead_letters(PREFIX) for topic in consumed}
    assert set(sent) == {topic.name(PREFIX) for topic in produced} | dead_letter_topics
    for topic in produced:
        documented = _by_title(_options(sent[topic.name(PREFIX)]))
        assert documented == _by_title(_envelopes_of(topic)), topic
    for name in dead_letter_topics:
        assert sent[name] == _contract_schema(DeadLetter)
