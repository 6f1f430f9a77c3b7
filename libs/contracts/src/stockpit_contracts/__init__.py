"""Stockpit Sync's shared contracts: the envelope, payload schemas, topics and their keys."""

from stockpit_contracts.envelope import Envelope, EnvelopeMeta
from stockpit_contracts.events import (
    EventDecodeError,
    new_event,
    parse_event,
    topic_payload_types,
)
from stockpit_contracts.payloads.base import PAYLOAD_TYPES, Payload
from stockpit_contracts.topics import ALL_TOPICS, KeyScope, Topic, partition_key

__all__ = [
    "ALL_TOPICS",
    "PAYLOAD_TYPES",
    "Envelope",
    "EnvelopeMeta",
    "EventDecodeError",
    "KeyScope",
    "Payload",
    "Topic",
    "new_event",
    "parse_event",
    "partition_key",
    "topic_payload_types",
]
