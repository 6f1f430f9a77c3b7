"""The record a consumer (or an outbox relay) publishes on `T.dlq` when it gives up on a message."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from stockpit_contracts.sizes import DEAD_LETTER_EXCERPT_CHARS


class DeadLetter(BaseModel):
    """Enough to understand a message that could not be handled, and where to find all of it.

    Not an envelope payload: a dead letter may hold a message too broken to have an envelope.
    It never carries the whole body: a dead letter of a message near the size limit would be
    larger than the message (JSON escaping) and could not be published. The whole body stays in
    the `dead_letters` table of the service that gave up (`dead_letter_id`), where
    `/operations/dead-letters` shows it and its replay sends it again.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    consumer_group: str = Field(
        description="the consumer group that gave up, or `outbox-relay` for a row the relay"
        " could not publish"
    )
    dead_letter_id: int | None = Field(
        default=None, description="the row of the service's `dead_letters` table"
    )
    original_topic: str
    partition: int = Field(description="-1 for an outbox row that never reached Kafka")
    offset: int = Field(description="the outbox row id for an outbox row")
    key: str | None = Field(max_length=1_000)
    value_excerpt: str = Field(
        max_length=DEAD_LETTER_EXCERPT_CHARS + 100,
        description="the start of the message body (UTF-8, undecodable bytes replaced)",
    )
    value_bytes: int = Field(ge=0, description="the size of the whole body")
    headers: dict[str, str]
    error_type: str
    reason: str = Field(max_length=DEAD_LETTER_EXCERPT_CHARS + 100)
    attempts: int = Field(ge=1)
    failed_at: AwareDatetime
