"""Malformed and hostile messages on every topic a service consumes, against the real processes.

Hypothesis generates batches of hostile messages (binary garbage, JSON that is not an object,
envelopes missing fields, unknown event types, payload fields of the wrong type, absurd
numbers, huge strings, valid events that belong on another topic). Each batch is published on
one topic, followed by a valid event on the same partition. Every hostile message must be
dead-lettered with a reason by the consuming service (GET /operations/dead-letters, matched by
partition and offset), and the valid event after them must still be applied.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from stockpit_contracts import new_event, partition_key
from stockpit_contracts.payloads.base import PAYLOAD_TYPES, Payload
from stockpit_contracts.payloads.catalog import ProductUpserted
from stockpit_contracts.payloads.connections import ConnectTenant, DisconnectTenant
from stockpit_contracts.payloads.documents import (
    DocumentKind,
    DocumentLine,
    DocumentVersionRead,
    ProductRef,
)
from stockpit_contracts.payloads.inventory import TenantSettingsChanged
from stockpit_contracts.payloads.outbound import PennylaneIdAssigned, ProductChangeRequested
from stockpit_contracts.topics import (
    CONNECTION_COMMANDS,
    INVENTORY_SETTINGS,
    OUTBOUND_REQUESTS,
    OUTBOUND_RESULTS,
    PENNYLANE_CATALOG,
    PENNYLANE_DOCUMENTS,
    Topic,
)
from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    connect,
    http,
    stock_matches,
    wait_until,
)
from stockpit_ops.system import RunningSystem, SystemConfig, running_system
from stockpit_runtime.kafka_security import kafka_options

# The tests share one running system (the module-scoped `victim`): under pytest-xdist they
# run on one worker (tests/conftest.py, ONE_WORKER_MODULES), so the system starts once.
pytestmark = pytest.mark.e2e

TENANT = "victim"
TOKEN = "victim-company-token"
BYSTANDER = "bystander"
BYSTANDER_TOKEN = "bystander-company-token"
SENTINEL_PRODUCT = 8_000_001  # a Pennylane product id only the sentinel documents name
# The required ones (a missing event_id is generated, so it is not hostile).
ENVELOPE_FIELDS = ("event_type", "schema_version", "tenant_id", "payload")
counter = itertools.count(1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Target:
    """A consumed topic, the service that consumes it, and a valid event whose effect shows."""

    topic: Topic
    service: str
    valid: Callable[[], Payload]
    applied: Callable[[], bool]
    sample: Payload  # the shape hostile messages are made from (never applied)


class Victim:
    def __init__(self, system: RunningSystem) -> None:
        self.system = system
        self.sandbox = SandboxAdmin(system.sandbox_url)
        self.inventory = Inventory(system, TENANT)
        self.sentinel_documents = 0
        self.last_label = ""
        self.last_connected = ""
        self.last_customer: tuple[str, int] = ("", 0)
        self.pennylane_product = 0
        self.last_interval = 0

    def document(self) -> Payload:
        self.sentinel_documents += 1
        n = next(counter)
        product = ProductRef(
            pennylane_id=SENTINEL_PRODUCT, label="Sentinelle", ledger_account_number="707000"
        )
        line = DocumentLine(
            pennylane_line_id=9_000_000 + n,
            label="Sentinelle",
            quantity=Decimal(1),
            product=product,
        )
        return DocumentVersionRead(
            kind=DocumentKind.INVOICE,
            pennylane_id=9_000_000 + n,
            number=f"S{n}",
            draft=False,
            updated_at=now(),
            lines=(line,),
        )

    def documents_applied(self) -> bool:
        stock = self.inventory.real_stock()
        return stock.get(SENTINEL_PRODUCT) == -self.sentinel_documents

    def catalog_product(self) -> Payload:
        self.last_label = f"Catalogue {next(counter)}"
        return ProductUpserted(
            pennylane_id=SENTINEL_PRODUCT + 1,
            label=self.last_label,
            ledger_account_number="707000",
            updated_at=now(),
        )

    def catalog_applied(self) -> bool:
        return any(p["name"] == self.last_label for p in self.inventory.products())

    def connection(self) -> Payload:
        # A tenant of its own, connected over HTTP (connect is HTTP-only), then a valid
        # disconnect command for it (the envelope's tenant is set on publish).
        self.last_connected = f"sentinel-{next(counter)}"
        connect(
            self.system,
            self.last_connected,
            TOKEN,
            sync_interval_s=86_400,
            documents_since=dt.date(2100, 1, 1),
        )
        return DisconnectTenant()

    def connection_applied(self) -> bool:
        url = self.system.url("poller") + f"/connections/{self.last_connected}"
        status: str = http("GET", url)["status"]
        return status == "disconnected"

    def rename_request(self) -> Payload:
        self.last_label = f"Renommé {next(counter)}"
        return ProductChangeRequested(
            product_id=str(uuid.uuid4()),
            pennylane_product_id=self.pennylane_product,
            label=self.last_label,
            changed_at=now(),
        )

    def rename_applied(self) -> bool:
        return any(
            p["id"] == self.pennylane_product and p["label"] == self.last_label
            for p in self.sandbox.records(TOKEN, "products")
        )

    def id_assigned(self) -> Payload:
        customer = http("POST", f"{self.inventory.url}/customers", {"name": "Client sentinelle"})
        self.last_customer = (str(customer["customer_id"]), 7_000_000 + next(counter))
        return PennylaneIdAssigned(
            entity_kind="customer",
            entity_id=self.last_customer[0],
            pennylane_id=self.last_customer[1],
        )

    def id_applied(self) -> bool:
        customer_id, pennylane_id = self.last_customer
        customers = http("GET", f"{self.inventory.url}/customers")
        return any(
            c["customer_id"] == customer_id and c["pennylane_id"] == pennylane_id for c in customers
        )

    def settings_change(self) -> Payload:
        # Short intervals: the victim keeps syncing on schedule.
        self.last_interval = 5 + next(counter)
        return TenantSettingsChanged(sync_interval_s=self.last_interval)

    def settings_applied(self) -> bool:
        status = http("GET", self.system.url("poller") + f"/connections/{TENANT}")
        return bool(status["sync_interval_s"] == self.last_interval)

    def targets(self) -> dict[str, Target]:
        samples = _samples()
        return {
            "documents": Target(
                PENNYLANE_DOCUMENTS,
                "inventory",
                self.document,
                self.documents_applied,
                samples["documents"],
            ),
            "catalog": Target(
                PENNYLANE_CATALOG,
                "inventory",
                self.catalog_product,
                self.catalog_applied,
                samples["catalog"],
            ),
            "connection commands": Target(
                CONNECTION_COMMANDS,
                "poller",
                self.connection,
                self.connection_applied,
                samples["connection commands"],
            ),
            "outbound requests": Target(
                OUTBOUND_REQUESTS,
                "outbound",
                self.rename_request,
                self.rename_applied,
                samples["outbound requests"],
            ),
            "outbound results": Target(
                OUTBOUND_RESULTS,
                "inventory",
                self.id_assigned,
                self.id_applied,
                samples["outbound results"],
            ),
            "settings": Target(
                INVENTORY_SETTINGS,
                "poller",
                self.settings_change,
                self.settings_applied,
                samples["settings"],
            ),
        }


def _samples() -> dict[str, Payload]:
    product = ProductRef(pennylane_id=5, label="Chaise", ledger_account_number="707000")
    line = DocumentLine(pennylane_line_id=6, label="Chaise", quantity=Decimal(2), product=product)
    return {
        "documents": DocumentVersionRead(
            kind=DocumentKind.INVOICE, pennylane_id=4, number="F1", draft=False,
            updated_at=now(), lines=(line,),
        ),
        "catalog": ProductUpserted(pennylane_id=5, label="Chaise", updated_at=now()),
        "connection commands": ConnectTenant.model_validate(
            {"pennylane_token": "some-token", "settings": {"sync_interval_s": 60}}
        ),
        "outbound requests": ProductChangeRequested(
            product_id="p-1", pennylane_product_id=5, label="Chaise", changed_at=now()
        ),
        "outbound results": PennylaneIdAssigned(
            entity_kind="customer", entity_id="c-1", pennylane_id=8
        ),
        "settings": TenantSettingsChanged(sync_interval_s=60),
    }  # fmt: skip


@pytest.fixture(scope="module")
def victim(
    kafka_bootstrap_servers: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Victim]:
    """One running system for every example: a connected tenant with imported stock, and a
    bystander tenant (another company) whose ids hostile messages borrow."""
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path_factory.mktemp("hostile"),
        tokens=(TOKEN, BYSTANDER_TOKEN),
        # A failing handler is retried little, so the drill spends its time on examples.
        extra_env={
            "STOCKPIT_CONSUMER_MAX_ATTEMPTS": "2",
            "STOCKPIT_CONSUMER_RETRY_BACKOFF_S": "0.05",
        },
    )
    with running_system(config) as system:
        target = Victim(system)
        target.sandbox.seed_invoices(TOKEN, count=5, seed=3, products=3, max_lines=2)
        target.sandbox.seed_invoices(BYSTANDER_TOKEN, count=5, seed=4, products=3, max_lines=2)
        connect(system, TENANT, TOKEN)
        connect(system, BYSTANDER, BYSTANDER_TOKEN)
        bystander = Inventory(system, BYSTANDER)
        wait_until(
            "first import",
            lambda: stock_matches(target.inventory, target.sandbox.expected_stock(TOKEN)),
        )
        wait_until(
            "bystander's first import",
            lambda: stock_matches(bystander, target.sandbox.expected_stock(BYSTANDER_TOKEN)),
        )
        target.pennylane_product = min(p["id"] for p in target.sandbox.records(TOKEN, "products"))
        yield target


# -- hostile messages -------------------------------------------------------------------


def _valid_envelope(payload: Payload) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(new_event(payload, tenant_id=TENANT).to_json())
    return envelope


absurd_numbers = st.sampled_from(
    ["1e400", "NaN", "-Infinity", 10**40, -(10**40), 1e308, "0.0000000001", 2**64]
)
huge_strings = st.integers(min_value=3_000, max_value=150_000).map(lambda n: "Ω" * n)
wrong_types = st.one_of(
    st.builds(lambda x: {"__hostile__": x}, st.integers() | st.text(max_size=20)),
    st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), min_size=1),
)


HOSTILE_KINDS = (
    "garbage",
    "not an object",
    "missing fields",
    "unknown type",
    "wrong type",
    "absurd number",
    "huge string",
    "another topic's event",
)


@st.composite
def hostile_bytes(draw: st.DrawFn, sample: Payload, service: str, kind: str | None = None) -> bytes:
    envelope = _valid_envelope(sample)
    payload_keys = sorted(envelope["payload"])
    kind = kind or draw(st.sampled_from(HOSTILE_KINDS))
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=2_000).filter(_not_a_json_object))
    if kind == "not an object":
        value = draw(st.one_of(st.integers(), st.text(max_size=50), st.lists(st.integers())))
        return json.dumps(value).encode()
    if kind == "missing fields":
        for name in draw(st.sets(st.sampled_from(ENVELOPE_FIELDS), min_size=1)):
            del envelope[name]
    elif kind == "unknown type":
        envelope["event_type"] = draw(st.text(min_size=1, max_size=60).filter(_unregistered))
    elif kind == "wrong type":
        envelope["payload"][draw(st.sampled_from(payload_keys))] = draw(wrong_types)
    elif kind == "absurd number":
        field = draw(st.sampled_from(["schema_version", *_numeric_fields(envelope["payload"])]))
        _set_path(envelope, field, draw(absurd_numbers))
    elif kind == "huge string":
        field = draw(st.sampled_from(["tenant_id", *_text_fields(envelope["payload"])]))
        _set_path(envelope, field, draw(huge_strings))
    else:
        foreign = _other_topic_events(service)
        other = draw(st.sampled_from(sorted(foreign)))
        envelope["event_type"] = other
        envelope["payload"] = foreign[other]
    return json.dumps(envelope, ensure_ascii=False).encode()


def _not_a_json_object(raw: bytes) -> bool:
    try:
        return not isinstance(json.loads(raw), dict)
    except ValueError:
        return True


def _unregistered(event_type: str) -> bool:
    return event_type not in PAYLOAD_TYPES


NUMERIC_KEYS = {"quantity", "amount", "pennylane_id", "sync_interval_s"}


def _numeric_fields(payload: dict[str, Any], prefix: str = "payload") -> list[str]:
    found = []
    for key, value in payload.items():
        path = f"{prefix}.{key}"
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number or key in NUMERIC_KEYS:
            found.append(path)
        elif isinstance(value, dict):
            found.extend(_numeric_fields(value, path))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            found.extend(_numeric_fields(value[0], f"{path}.0"))
    return found


def _text_fields(payload: dict[str, Any], prefix: str = "payload") -> list[str]:
    found = []
    for key, value in payload.items():
        path = f"{prefix}.{key}"
        if isinstance(value, str) and key not in {"updated_at", "changed_at", "issued_on"}:
            found.append(path)
        elif isinstance(value, dict):
            found.extend(_text_fields(value, path))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            found.extend(_text_fields(value[0], f"{path}.0"))
    return found


def _set_path(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value


def _other_topic_events(service: str) -> dict[str, dict[str, Any]]:
    """Well-formed events that no handler of `service` takes (they belong on other topics)."""
    samples = _samples()
    foreign = {
        "inventory": ("connection commands", "outbound requests"),
        "outbound": ("catalog", "outbound results"),
        "poller": ("documents", "outbound results"),
    }[service]
    return {
        samples[name].EVENT_TYPE: json.loads(samples[name].model_dump_json()) for name in foreign
    }


# -- publishing and checking -------------------------------------------------------------


async def _publish(
    bootstrap: str, topic: str, hostile: list[bytes], valid: bytes
) -> list[tuple[int, int]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **kafka_options(), acks="all", max_request_size=2_000_000
    )
    await producer.start()
    try:
        positions = []
        key = partition_key(TENANT)
        for value in hostile:
            sent = await producer.send_and_wait(topic, value, key=key)
            positions.append((sent.partition, sent.offset))
        await producer.send_and_wait(topic, valid, key=key)
        return positions
    finally:
        await producer.stop()


def _run_batch(victim: Victim, name: str, data: st.DataObject, *, every_kind: bool) -> None:
    target = victim.targets()[name]
    topic = target.topic.name(f"run{victim.system.config.run_id}.")
    if every_kind:
        hostile = [
            data.draw(hostile_bytes(target.sample, target.service, kind), label=kind)
            for kind in HOSTILE_KINDS
        ]
    else:
        hostile = data.draw(
            st.lists(hostile_bytes(target.sample, target.service), min_size=1, max_size=4)
        )
    valid_payload = target.valid()
    tenant = victim.last_connected if name == "connection commands" else TENANT
    valid = new_event(valid_payload, tenant_id=tenant).to_json()
    positions = asyncio.run(
        _publish(victim.system.config.kafka_bootstrap_servers, topic, hostile, valid)
    )
    wait_until(
        f"the valid {name} event after the hostile ones is applied",
        lambda: target.applied() or None,
        60,
    )
    dead_letters_url = victim.system.url(target.service) + "/operations/dead-letters"

    def all_dead_lettered() -> dict[tuple[int, int], str] | None:
        rows = http("GET", dead_letters_url, limit=500)
        reasons = {
            (row["partition"], row["offset"]): row["reason"]
            for row in rows
            if row["topic"] == topic
        }
        return reasons if all(position in reasons for position in positions) else None

    reasons = wait_until(f"hostile {name} messages dead-lettered", all_dead_lettered, 30)
    for position in positions:
        assert reasons[position].strip(), f"dead letter at {position} has no reason"


EXAMPLES = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    # Shrinking replays examples against live processes for minutes; the failing batch is
    # printed as drawn instead.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


TOPICS = [
    "documents",
    "catalog",
    "connection commands",
    "outbound requests",
    "outbound results",
    "settings",
]


@pytest.mark.parametrize("name", TOPICS)
@EXAMPLES
@given(data=st.data())
def test_hostile_messages_are_dead_lettered_with_a_reason_and_the_stream_goes_on(
    victim: Victim, name: str, data: st.DataObject
) -> None:
    _run_batch(victim, name, data, every_kind=False)


@pytest.mark.parametrize("name", TOPICS)
@settings(EXAMPLES, max_examples=2)
@given(data=st.data())
def test_every_kind_of_hostile_message_is_dead_lettered_on_every_topic(
    victim: Victim, name: str, data: st.DataObject
) -> None:
    """One message of each kind per example, so no kind is left to the draw's luck."""
    _run_batch(victim, name, data, every_kind=True)


def test_messages_naming_another_tenants_records_never_touch_that_tenant(victim: Victim) -> None:
    """The victim's messages carry the bystander's customer and product ids: the bystander's
    data and Pennylane company stay as they were, and the write is dead-lettered."""
    system, sandbox = victim.system, victim.sandbox
    bystander = Inventory(system, BYSTANDER)
    customer = http("POST", f"{bystander.url}/customers", {"name": "Client du voisin"})
    their_product = min(p["id"] for p in sandbox.records(BYSTANDER_TOKEN, "products"))
    their_product_id = bystander.product_id(their_product)
    their_labels = {p["id"]: p["label"] for p in sandbox.records(BYSTANDER_TOKEN, "products")}
    their_writes = sandbox.writes(BYSTANDER_TOKEN)
    prefix = f"run{system.config.run_id}."
    hostile = {
        OUTBOUND_RESULTS: PennylaneIdAssigned(
            entity_kind="customer", entity_id=str(customer["customer_id"]), pennylane_id=4242
        ),
        OUTBOUND_REQUESTS: ProductChangeRequested(
            product_id=their_product_id,
            pennylane_product_id=their_product,
            label="Détourné",
            changed_at=now(),
        ),
    }
    targets = {t.topic: t for t in victim.targets().values()}
    for topic, payload in hostile.items():
        target = targets[topic]
        hostile_message = new_event(payload, tenant_id=TENANT).to_json()
        valid = new_event(target.valid(), tenant_id=TENANT).to_json()
        asyncio.run(
            _publish(
                system.config.kafka_bootstrap_servers, topic.name(prefix), [hostile_message], valid
            )
        )

        def valid_event_applied(t: Target = target) -> bool | None:
            return t.applied() or None

        wait_until(f"the valid event after it on {topic.base_name}", valid_event_applied, 60)

    def write_dead_lettered() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = http(
            "GET", system.url("outbound") + "/outbound/dead-letters", tenant_id=TENANT
        )
        return [row for row in rows if row["entity_id"] == their_product_id] or None

    [dead] = wait_until("the write naming their product dead-lettered", write_dead_lettered, 120)
    assert dead["reason"].strip()
    after = http("GET", f"{bystander.url}/customers")
    assert [c["pennylane_id"] for c in after if c["customer_id"] == customer["customer_id"]] == [
        None
    ]
    assert {p["id"]: p["label"] for p in sandbox.records(BYSTANDER_TOKEN, "products")} == (
        their_labels
    )
    assert sandbox.writes(BYSTANDER_TOKEN) == their_writes
    refused = http("GET", system.url("inventory") + "/operations/dead-letters", tenant_id=TENANT)
    assert any(
        f"no customer {customer['customer_id']} in this tenant" in row["reason"] for row in refused
    ), "a result naming another tenant's customer is refused, not recorded"
