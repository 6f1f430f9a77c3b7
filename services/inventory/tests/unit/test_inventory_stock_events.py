"""Stock events written straight as outbox rows (`StockEventRows`) must be the rows the
contract's models make (`new_event` then `outbox_rows`) byte for byte, and every event the fast
tests cannot vouch for must go through the models, which keep the contract's bounds."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from inventory.domain.stock import Cause, CauseKind, Effect, LedgerEntry, StockKey, StockMovement
from inventory.service_layer.messages import to_message
from inventory.service_layer.stock_events import StockEventRows
from pydantic import ValidationError
from stockpit_contracts import EnvelopeMeta, new_event
from stockpit_contracts.events import envelope_type
from stockpit_runtime.outbox import OutboxRow, outbox_rows

TENANT = "acme-1"
TOPIC = "p.stockpit.inventory.stock"
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _entry(rng: random.Random, **changes: object) -> LedgerEntry:
    """A ledger entry; `changes` names the stock event's fields (`available` sets the reserved
    quantity that gives it, `cause` the cause's reference)."""

    def quantity(bound: int = 10**9) -> Decimal:
        return Decimal(rng.randint(-bound, bound)) / Decimal(10 ** rng.randint(0, 6))

    fields: dict[str, object] = {
        "tenant_id": TENANT,
        "product_id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "location_id": uuid.UUID(int=rng.getrandbits(128), version=4),
        # Within half the contract's bound: available = real - reserved stays within it.
        "real": quantity(10**8).quantize(Decimal("0.000001")),
        "reserved": quantity(10**8),
        "incoming": Decimal(0),
        "real_delta": quantity(),
        "reserved_delta": Decimal("-0"),
        "incoming_delta": Decimal("0E-6"),
        "cause": f"invoice:{rng.randint(1, 10**9)}",
        "ledger_entry_id": uuid.UUID(int=rng.getrandbits(128), version=4),
    }
    available = changes.pop("available", None)
    fields.update(changes)
    if isinstance(available, Decimal):
        fields["reserved"] = fields["real"] - available  # type: ignore[operator]
    movement = StockMovement(
        StockKey(fields["product_id"], fields["location_id"]),  # type: ignore[arg-type]
        Effect(
            fields["real_delta"],  # type: ignore[arg-type]
            fields["reserved_delta"],  # type: ignore[arg-type]
            fields["incoming_delta"],  # type: ignore[arg-type]
        ),
        Cause(
            CauseKind.DOCUMENT,
            uuid.UUID(int=rng.getrandbits(128), version=4),
            fields["cause"],  # type: ignore[arg-type]
            version="2026-11-02T09:00:00+00:00",
        ),
    )
    return LedgerEntry(
        fields["ledger_entry_id"],  # type: ignore[arg-type]
        fields["tenant_id"],  # type: ignore[arg-type]
        movement,
        T0,
        fields["real"],  # type: ignore[arg-type]
        fields["reserved"],  # type: ignore[arg-type]
        fields["incoming"],  # type: ignore[arg-type]
    )


def _models_row(
    entry: LedgerEntry, pennylane_id: int | None, cause: EnvelopeMeta | None, fast: OutboxRow
) -> OutboxRow:
    """The row the models make for the entry's stock event, with the fast row's event id and
    time."""
    event = entry.stock_changed()
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
        entry = _entry(rng)
        if index % 3 == 0:
            entry = _entry(rng, cause='returned "as new" — café\ttwice \\ ok')
        pennylane_id = rng.choice([None, 1, rng.randint(1, 2**63 - 1)])
        cause = causes[index % 2]
        fast = rows.row(entry, pennylane_id, cause)
        assert fast is not None
        assert fast == _models_row(entry, pennylane_id, cause, fast)


def test_event_ids_are_fresh_random_uuids() -> None:
    rows = StockEventRows(TENANT, TOPIC, 3)
    rng = random.Random(1)
    ids = []
    for _ in range(200):  # past the ids made up front
        row = rows.row(_entry(rng), None, None)
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
        {"cause": "x" * 1990},
    ],
)
def test_events_outside_the_contract_take_the_models_way_and_are_refused(
    changes: dict[str, object],
) -> None:
    entry = _entry(random.Random(3), **changes)
    assert StockEventRows(TENANT, TOPIC, 1).row(entry, None, None) is None
    with pytest.raises(ValidationError):
        to_message(entry.stock_changed(), {})


@pytest.mark.parametrize(
    "changes",
    [{"real": Decimal("1E+2")}, {"reserved": Decimal("1.5000000")}],
)
def test_events_the_fast_tests_cannot_vouch_for_take_the_models_way(
    changes: dict[str, object],
) -> None:
    entry = _entry(random.Random(4), **changes)
    assert StockEventRows(TENANT, TOPIC, 1).row(entry, None, None) is None
    assert to_message(entry.stock_changed(), {}) is not None  # the contract accepts it


def test_a_tenant_id_outside_the_envelope_rule_takes_the_models_way() -> None:
    entry = _entry(random.Random(5), tenant_id="a b")
    assert StockEventRows("a b", TOPIC, 1).row(entry, None, None) is None


def test_time_is_utc_with_z() -> None:
    row = StockEventRows(TENANT, TOPIC, 1).row(_entry(random.Random(6)), None, None)
    assert row is not None
    occurred = json.loads(row[2])["occurred_at"]
    assert occurred.endswith("Z")
    assert datetime.fromisoformat(occurred.replace("Z", "+00:00")).utcoffset() is not None
