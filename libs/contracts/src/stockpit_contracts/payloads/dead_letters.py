"""The record a consumer writes when it gives up on a message."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class DeadLetter(BaseModel):
    """Everything needed to understand and replay a message that could not be handled.

    Not an envelope payload: a dead letter may hold a message too broken to have an envelope.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    consumer_group: str
    original_topic: str
    partition: int
    offset: int
    key: str | None
    value: str = Field(
        description="the message body as received (UTF-8, undecodable bytes replaced)"
    )
    headers: dict[str, str]
    error_type: str
    reason: str
    attempts: int = Field(ge=1)
    failed_at: AwareDatetime
