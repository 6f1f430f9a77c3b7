"""Building events and reading them back from the wire."""

from __future__ import annotations

import json
from functools import cache
from typing import Any, TypeVar, cast
from uuid import UUID

from pydantic import ValidationError

from stockpit_contracts.envelope import Envelope, EnvelopeMeta
from stockpit_contracts.payloads import (
    catalog,
    connections,
    documents,
    inventory,
    outbound,
    poller,
)
from stockpit_contracts.payloads.base import PAYLOAD_TYPES, Payload
from stockpit_contracts.topics import Topic

# Importing the payload modules registers their types.
_REGISTERED = (catalog, connections, documents, inventory, outbound, poller)

P = TypeVar("P", bound=Payload)


@cache
def envelope_type(payload_type: type[Payload]) -> type[Envelope[Payload]]:
    """The concrete envelope model for one payload type (built once)."""
    return Envelope[payload_type]  # type: ignore[valid-type]


def topic_payload_types(topic: Topic) -> tuple[type[Payload], ...]:
    """The payload types `topic` carries (each payload type names its topic), by event type."""
    return tuple(
        payload_type
        for _, payload_type in sorted(PAYLOAD_TYPES.items())
        if topic == payload_type.TOPIC
    )


class EventDecodeError(ValueError):
    """A message that is not a valid event: it goes to dead letters with this reason."""


def new_event(
    payload: P,
    tenant_id: str,
    *,
    caused_by: EnvelopeMeta | None = None,
    correlation_id: UUID | None = None,
) -> Envelope[P]:
    """An envelope for `payload`; an event caused by another keeps its correlation id."""
    fields: dict[str, Any] = {
        "event_type": payload.EVENT_TYPE,
        "schema_version": payload.SCHEMA_VERSION,
        "tenant_id": tenant_id,
        "payload": payload,
    }
    if caused_by is not None:
        fields["correlation_id"] = caused_by.correlation_id
        fields["causation_id"] = caused_by.event_id
    elif correlation_id is not None:
        fields["correlation_id"] = correlation_id
    # A string cast: evaluating Envelope[P] at run time rebuilds a generic model class often.
    return cast("Envelope[P]", envelope_type(type(payload)).model_validate(fields))


def parse_event(raw: bytes | str) -> Envelope[Payload]:
    """Decode and validate a message body into its registered payload type."""
    try:
        data = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise EventDecodeError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EventDecodeError("body is not a JSON object")
    event_type = data.get("event_type")
    payload_type = PAYLOAD_TYPES.get(event_type) if isinstance(event_type, str) else None
    if payload_type is None:
        raise EventDecodeError(f"unknown event type {event_type!r}")
    version = data.get("schema_version")
    if version != payload_type.SCHEMA_VERSION:
        raise EventDecodeError(
            f"{event_type} schema version {version!r} is not the supported"
            f" {payload_type.SCHEMA_VERSION}"
        )
    try:
        return envelope_type(payload_type).model_validate(data)
    except ValidationError as exc:
        raise EventDecodeError(f"invalid {event_type}: {_summarise(exc)}") from exc


def _summarise(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(loc) for loc in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
    ]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
