"""The envelope every message on every topic carries.

The JSON body is the whole envelope (so a consumer that only sees the value has everything), and
the envelope's scalar fields are repeated as Kafka headers so that brokers' tools, dead-letter
inspection and routing can read them without parsing the body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Generic, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from stockpit_contracts.ids import new_uuid

PayloadT = TypeVar("PayloadT", bound=BaseModel)

HEADER_PREFIX = "stockpit-"


def utc_now() -> datetime:
    return datetime.now(UTC)


_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_.:-]*")


def _json_text(value: str) -> str:
    """A JSON string: quoted as it is when plain (tenant ids and event types are)."""
    return f'"{value}"' if _PLAIN_TEXT.fullmatch(value) else json.dumps(value)


class EnvelopeMeta(BaseModel):
    """The envelope without its payload: what headers carry and what handlers log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID = Field(default_factory=new_uuid)
    event_type: str = Field(min_length=1, max_length=200)
    schema_version: int = Field(ge=1)
    tenant_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    correlation_id: UUID = Field(default_factory=new_uuid)
    causation_id: UUID | None = None

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def headers(self) -> dict[str, str]:
        """Kafka headers for this envelope (values are strings; absent ids are left out).

        Written out field by field, as pydantic's JSON mode writes them (UTC times end in "Z"):
        every outbox row needs them, and dumping the whole model for seven scalars is slower."""
        headers = {
            "stockpit-event-id": str(self.event_id),
            "stockpit-event-type": self.event_type,
            "stockpit-schema-version": str(self.schema_version),
            "stockpit-tenant-id": self.tenant_id,
            "stockpit-occurred-at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "stockpit-correlation-id": str(self.correlation_id),
        }
        if self.causation_id is not None:
            headers["stockpit-causation-id"] = str(self.causation_id)
        return headers

    def headers_json(self) -> str:
        """`headers()` as a JSON object, written out directly (the outbox stores it this way).

        Ids, versions and times need no escaping; the tenant id and event type are escaped by
        `json.dumps` unless they are plain, which they are by construction."""
        causation = (
            "" if self.causation_id is None else f',"stockpit-causation-id":"{self.causation_id}"'
        )
        return (
            f'{{"stockpit-event-id":"{self.event_id}",'
            f'"stockpit-event-type":{_json_text(self.event_type)},'
            f'"stockpit-schema-version":"{self.schema_version}",'
            f'"stockpit-tenant-id":{_json_text(self.tenant_id)},'
            f'"stockpit-occurred-at":"{self.occurred_at.isoformat().replace("+00:00", "Z")}",'
            f'"stockpit-correlation-id":"{self.correlation_id}"{causation}}}'
        )

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str | bytes] | Sequence[tuple[str, bytes]]
    ) -> EnvelopeMeta:
        items = headers.items() if isinstance(headers, Mapping) else headers
        decoded = {
            key.removeprefix(HEADER_PREFIX).replace("-", "_"): (
                value.decode() if isinstance(value, bytes) else value
            )
            for key, value in items
            if key.startswith(HEADER_PREFIX)
        }
        return cls.model_validate(decoded)


class Envelope(EnvelopeMeta, Generic[PayloadT]):
    """An event: envelope fields plus a typed payload."""

    payload: PayloadT

    @property
    def meta(self) -> EnvelopeMeta:
        # The fields were validated when the envelope was: no need to validate them again.
        return EnvelopeMeta.model_construct(
            **{name: getattr(self, name) for name in EnvelopeMeta.model_fields}
        )

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
