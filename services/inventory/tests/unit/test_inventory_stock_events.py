"""Stock events written straight as outbox rows (`StockEventRows`) must be the rows the
contract's models make (`new_event` then `outbox_rows`) byte for byte, and every event the fast
tests cannot vouch for must go through the models, which keep the contract's bounds."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from inventory.domain.events import StockChanged
from inventory.service_layer.messages import to_message
from inventory.service_layer.stock_events import StockEventRows
from pydantic import ValidationError
from stockpit_contracts import EnvelopeMeta, new_event
from stockpit_contracts.events import envelope_type
from stockpit_runtime.outbox import OutboxRow, outbox_rows

TENANT = "acme-1"
TOPIC = "p.stockpit.inventory.stock"


def _event(rng: random.Random, **changes: object) -> StockChanged:
    def quantity() -> Decimal:
        return Decimal(rng.randint(-(10**9), 10**9)) / Decimal(10 ** rng.randint(0, 6))

    fields: dict[str, object] = {
        "tenant_id": TENANT,
        "product_id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "location_id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "real": quantity().quantize(Decimal("0.000001")),
        "reserved": quantity(),
        "available": quantity(),
        "incoming": Decimal(0),
        "real_delta": quantity(),
        "reserved_delta": Decimal("-0"),
        "incoming_delta": Decimal("0E-6"),
        "cause": f"document invoice:{rng.randint(1, 10**9)} version 2026-11-02T09:00:00+00:00",
        "ledger_entry_id": uuid.UUID(int=rng.getrandbits(128), version=4),
    }
    fields.update(changes)
    return StockChanged(**fields)  # type: ignore[arg-type]


def _models_row(
    event: StockChanged, pennylane_id: int | None, cause: EnvelopeMeta | None, fast: OutboxRow
) -> OutboxRow:
    """The row the models make for the event, with the fast row's event id and time."""
    message = to_message(event, {} if pennylane_id is None else {event.product_id: pennylane_id})
    assert message is not None
    topic, key, payload = message
    made = new_event(payload, event.tenant_id, caused_by=cause)
    written = json.loads(fast[2])
    fields = made.model_dump() | {
        "event_id": written["event_id"],
        "occurred_at": written["occurred_at"],
    }
    if cause is None:
        fields["correlation_id"] = written["correlation_id"]
    (row,) = outbox_rows(
        [(topic.name("p."), key, envelope_type(type(payload)).model_validate(fields))]
    )
    return row


def _cause() -> EnvelopeMeta:
    return EnvelopeMeta(event_type="pennylane.document.read", schema_version=1, tenant_id=TENANT)


@pytest.mark.parametrize("seed", range(20))
def test_rows_are_the_models_rows_byte_for_byte(seed: int) -> None:
    rng = random.Random(seed)
    rows = StockEventRows(TENANT, TOPIC, 2)
    causes = [_cause(), None]
    for index in range(30):
        event = _event(rng)
        if index % 3 == 0:
            event = _event(rng, cause='returned "as new" — café\ttwice \\ ok')
        pennylane_id = rng.choice([None, 1, rng.randint(1, 2**63 - 1)])
        cause = causes[index % 2]
        fast = rows.row(event, pennylane_id, cause)
        assert fast is not None
        assert fast == _models_row(event, pennylane_id, cause, fast)


def test_event_ids_are_fresh_random_uuids() -> None:
    rows = StockEventRows(TENANT, TOPIC, 3)
    rng = random.Random(1)
    ids = []
    for _ in range(200):  # past the ids made up front
        row = rows.row(_event(rng), None, None)
        assert row is not None
        ids.append(uuid.UUID(json.loads(row[2])["event_id"]))
    assert len(set(ids)) == len(ids)
    assert all(value.version == 4 and value.variant == uuid.RFC_4122 for value in ids)


@pytest.mark.parametrize(
    "changes",
    [
        {"real": Decimal("1000000000.000001")},
        {"available": Decimal("-1000000001")},
        {"incoming_delta": Decimal("0.0000001")},
        {"cause": "x" * 2001},
    ],
)
def test_events_outside_the_contract_take_the_models_way_and_are_refused(
    changes: dict[str, object],
) -> None:
    event = _event(random.Random(3), **changes)
    assert StockEventRows(TENANT, TOPIC, 1).row(event, None, None) is None
    with pytest.raises(ValidationError):
        to_message(event, {})


@pytest.mark.parametrize(
    "changes",
    [{"real": Decimal("1E+2")}, {"reserved": Decimal("1.5000000")}],
)
def test_events_the_fast_tests_cannot_vouch_for_take_the_models_way(
    changes: dict[str, object],
) -> None:
    event = _event(random.Random(4), **changes)
    assert StockEventRows(TENANT, TOPIC, 1).row(event, None, None) is None
    assert to_message(event, {}) is not None  # the contract accepts it


def test_a_tenant_id_outside_the_envelope_rule_takes_the_models_way() -> None:
    event = _event(random.Random(5), tenant_id="a b")
    assert StockEventRows("a b", TOPIC, 1).row(event, None, None) is None


def test_time_is_utc_with_z() -> None:
    row = StockEventRows(TENANT, TOPIC, 1).row(_event(random.Random(6)), None, None)
    assert row is not None
    occurred = json.loads(row[2])["occurred_at"]
    assert occurred.endswith("Z")
    assert datetime.fromisoformat(occurred.replace("Z", "+00:00")).utcoffset() is not None
