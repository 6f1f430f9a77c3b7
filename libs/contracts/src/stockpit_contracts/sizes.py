"""How large a message may be, and the check made where a message is made.

Every topic the services create gets `max.message.bytes` = `MAX_MESSAGE_BYTES` explicitly (the
broker's default, written down so that a broker configured otherwise cannot silently shrink it).
An event's JSON body may use `MAX_EVENT_BYTES` of it; the rest is room for the key (a tenant
and an id), the `stockpit-*` headers and the record's own framing. A message larger than that
can never be published: it is refused where it is made (`ensure_fits`), so it never reaches an
outbox, and the HTTP request or the consumed message that would have made it is refused instead,
naming the field that made it too large.
"""

from __future__ import annotations

import json
from typing import Any

# The topic config `max.message.bytes` of every topic the services create.
MAX_MESSAGE_BYTES = 1_048_576
# What an event's JSON body may use of it (key, headers and record framing take the rest).
MAX_EVENT_BYTES = MAX_MESSAGE_BYTES - 16_384
# A dead letter published on `T.dlq` carries at most this much of the message's body; the whole
# body stays in the consumer's `dead_letters` table.
DEAD_LETTER_EXCERPT_CHARS = 2_000


class MessageTooLarge(ValueError):
    """An event whose JSON body would not fit in a Kafka message of its topic."""

    def __init__(self, event_type: str, size: int, field: str) -> None:
        self.event_type = event_type
        self.size = size
        self.limit = MAX_EVENT_BYTES
        self.field = field
        super().__init__(
            f"{event_type} would be {size} bytes, more than the {MAX_EVENT_BYTES} a message may"
            f" carry; most of it is in {field!r}"
        )


def ensure_fits(event_type: str, body: bytes) -> None:
    """Raise `MessageTooLarge` (naming the largest field of the payload) when `body` is too large.

    Only the length is checked on the way: the field is looked for once the body is refused."""
    if len(body) > MAX_EVENT_BYTES:
        raise MessageTooLarge(event_type, len(body), largest_field(body))


def largest_field(body: bytes) -> str:
    """The dotted path, inside the payload, of the largest part of an event's JSON body
    (`emails`, `lines`, `billing_address.city`): what a caller should shorten."""
    try:
        node: Any = json.loads(body).get("payload", {})
    except (ValueError, AttributeError):
        return "payload"
    path: list[str] = []
    while isinstance(node, dict) and node:
        name, node = max(node.items(), key=lambda item: _size(item[1]))
        path.append(str(name))
    return ".".join(path) or "payload"


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def excerpt(text: str, limit: int = DEAD_LETTER_EXCERPT_CHARS) -> str:
    """The start of `text`, marked when cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"
