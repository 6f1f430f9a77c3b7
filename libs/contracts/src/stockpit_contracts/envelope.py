"""The envelope every message on every topic carries.

The JSON body is the whole envelope (so a consumer that only sees the value has everything), and
the envelope's scalar fields are repeated as Kafka headers so that brokers' tools, dead-letter
inspection and routing can read them without parsing the body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

PayloadT = TypeVar("PayloadT", bound=BaseModel)

HEADER_PREFIX = "stockpit-"
ENVELOPE_HEADER_FIELDS = (
    "event_id",
    "event_type",
    "schema_version",
    "tenant_id",
    "occurred_at",
    "correlation_id",
    "causation_id",
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class EnvelopeMeta(BaseModel):
    """The envelope without its payload: what headers carry and what handlers log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str = Field(min_length=1, max_length=200)
    schema_version: int = Field(ge=1)
    tenant_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    correlation_id: UUID = Field(default_factory=uuid4)
    causation_id: UUID | None = None

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def headers(self) -> dict[str, str]:
        """Kafka headers for this envelope (values are strings; absent ids are left out)."""
        # Only the header fields are dumped: an envelope's payload may be large.
        values = self.model_dump(mode="json", include=set(ENVELOPE_HEADER_FIELDS))
        return {
            HEADER_PREFIX + name.replace("_", "-"): str(values[name])
            for name in ENVELOPE_HEADER_FIELDS
            if values[name] is not None
        }

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
