"""Common ground for payload models: registration, value types and bounds."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from stockpit_contracts.topics import Topic

# Bounds reject absurd figures at the edge, before they reach stock or accounting.
MAX_ABS_QUANTITY = Decimal("1000000000")
Quantity = Annotated[
    Decimal,
    Field(ge=-MAX_ABS_QUANTITY, le=MAX_ABS_QUANTITY, max_digits=20, decimal_places=6),
]
Money = Annotated[Decimal, Field(ge=Decimal("-1e12"), le=Decimal("1e12"), decimal_places=6)]
PennylaneId = Annotated[int, Field(gt=0, lt=2**63)]
EntityId = Annotated[str, Field(min_length=1, max_length=100)]
ShortText = Annotated[str, Field(max_length=2000)]


class Payload(BaseModel):
    """A payload model knows its event type, schema version and topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    EVENT_TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[Topic]


PAYLOAD_TYPES: dict[str, type[Payload]] = {}


def register(cls: type[Payload]) -> type[Payload]:
    if cls.EVENT_TYPE in PAYLOAD_TYPES:
        raise ValueError(f"event type {cls.EVENT_TYPE!r} registered twice")
    PAYLOAD_TYPES[cls.EVENT_TYPE] = cls
    return cls
