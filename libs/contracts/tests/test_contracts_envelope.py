import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stockpit_contracts import EnvelopeMeta, EventDecodeError, new_event, parse_event, partition_key
from stockpit_contracts.payloads.connections import ConnectTenant
from stockpit_contracts.payloads.documents import DocumentKind, DocumentLine, DocumentVersionRead


def _invoice(quantity: str = "2.5") -> DocumentVersionRead:
    return DocumentVersionRead(
        kind=DocumentKind.INVOICE,
        pennylane_id=42,
        draft=False,
        updated_at=datetime(2026, 11, 1, 10, tzinfo=UTC),
        lines=(DocumentLine(pennylane_line_id=1, label="Chair", quantity=Decimal(quantity)),),
    )


def test_an_event_survives_the_wire_with_decimals_and_utc_intact() -> None:
    event = new_event(_invoice("2.500001"), "tenant-a")
    back = parse_event(event.to_json())
    assert back == event
    assert isinstance(back.payload, DocumentVersionRead)
    assert back.payload.lines[0].quantity == Decimal("2.500001")
    assert back.occurred_at.tzinfo is not None


def test_headers_repeat_the_envelope_and_read_back() -> None:
    event = new_event(_invoice(), "tenant-a")
    headers = event.headers()
    assert headers["stockpit-event-type"] == "pennylane.document.version_read"
    assert headers["stockpit-tenant-id"] == "tenant-a"
    assert "stockpit-causation-id" not in headers
    meta = EnvelopeMeta.from_headers([(k, v.encode()) for k, v in headers.items()])
    assert meta == event.meta


def test_a_caused_event_keeps_the_correlation_and_names_its_cause() -> None:
    cause = new_event(_invoice(), "tenant-a")
    effect = new_event(_invoice(), "tenant-a", caused_by=cause.meta)
    assert effect.correlation_id == cause.correlation_id
    assert effect.causation_id == cause.event_id
    assert effect.event_id != cause.event_id


def test_occurred_at_is_normalised_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    meta = EnvelopeMeta(
        event_type="x",
        schema_version=1,
        tenant_id="t",
        occurred_at=datetime(2026, 1, 1, 12, tzinfo=paris),
    )
    assert meta.occurred_at == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert meta.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"event_type": "no.such.event", "schema_version": 1}', "unknown event type"),
        (b'{"event_type": "pennylane.document.deleted", "schema_version": 9}', "schema version"),
    ],
)
def test_broken_bodies_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(EventDecodeError, match=reason):
        parse_event(raw)


def test_absurd_quantities_and_naive_times_are_rejected() -> None:
    absurd = new_event(_invoice(), "tenant-a").model_dump(mode="json")
    absurd["payload"]["lines"][0]["quantity"] = "1e15"
    with pytest.raises(EventDecodeError, match="quantity"):
        parse_event(json.dumps(absurd))
    naive = new_event(_invoice(), "tenant-a").model_dump(mode="json")
    naive["payload"]["updated_at"] = "2026-11-01T10:00:00"
    with pytest.raises(EventDecodeError, match="updated_at"):
        parse_event(json.dumps(naive))


def test_a_tenant_id_cannot_smuggle_key_separators_or_spaces() -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        EnvelopeMeta(event_type="x", schema_version=1, tenant_id="a b")


def test_a_connect_command_never_carries_the_token_in_clear() -> None:
    command = new_event(ConnectTenant(pennylane_token="secret-token-123"), "tenant-a")
    assert "secret-token-123" not in repr(command)
    assert "secret-token-123" not in str(command.payload)
    assert b"secret-token-123" not in command.to_json()
    back = parse_event(command.to_json())
    assert isinstance(back.payload, ConnectTenant)
    assert back.payload.pennylane_token.get_secret_value() == "**redacted**"


def test_partition_key_puts_the_tenant_first() -> None:
    assert partition_key("tenant-a", "product", 7) == b"tenant-a:product:7"
    assert partition_key("tenant-a") == b"tenant-a"


def test_a_connection_command_kept_as_a_dead_letter_loses_its_token() -> None:
    from stockpit_contracts.payloads.connections import redact_connection_command

    event = new_event(ConnectTenant(pennylane_token="secret-token-123"), "tenant-a")
    body = event.model_dump(mode="json")
    body["payload"]["pennylane_token"] = "secret-token-123"  # as another producer could
    raw = json.dumps(body).encode()
    redacted = redact_connection_command(raw)
    assert b"secret-token-123" not in redacted
    assert json.loads(redacted)["tenant_id"] == "tenant-a"
    assert b"secret-token-123" not in redact_connection_command(raw[:-3])
    assert redact_connection_command(b"[1]") == b"<withheld: 3 bytes that are not a JSON object>"


@given(
    occurred_at=st.datetimes(timezones=st.timezones()),
    caused=st.booleans(),
)
def test_headers_are_the_envelopes_fields_as_pydantic_writes_them_in_json(
    occurred_at: datetime, caused: bool
) -> None:
    cause = new_event(_invoice(), "tenant-a").meta if caused else None
    event = new_event(_invoice(), "tenant-a", caused_by=cause).model_copy(
        update={"occurred_at": occurred_at.astimezone(UTC)}
    )
    dumped = event.model_dump(mode="json", exclude={"payload"})
    assert event.headers() == {
        "stockpit-" + name.replace("_", "-"): str(value)
        for name, value in dumped.items()
        if value is not None
    }


@given(
    occurred_at=st.datetimes(timezones=st.timezones()),
    caused=st.booleans(),
    event_type=st.text(min_size=1, max_size=30),
    tenant_id=st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True),
)
def test_headers_json_is_the_headers_as_a_json_object(
    occurred_at: datetime, caused: bool, event_type: str, tenant_id: str
) -> None:
    cause = new_event(_invoice(), "tenant-a").meta if caused else None
    # model_copy does not validate: any event type reaches the writer, quotes and all.
    event = new_event(_invoice(), tenant_id, caused_by=cause).model_copy(
        update={"occurred_at": occurred_at.astimezone(UTC), "event_type": event_type}
    )
    assert json.loads(event.headers_json()) == event.headers()
