"""Stock-changed events written straight as outbox rows.

A consumer batch makes one stock event per ledger entry, thousands per transaction. Going
through the contract's models (the payload, then the envelope, then their JSON and headers)
costs more per line than the rest of the event's journey together, so the rows are written
here directly: the same JSON body, key and headers as `new_event(...)` and `outbox_rows` make
(a unit test compares them byte for byte).

The contract's bounds are still checked on every event, by cheap sufficient tests (quantities
of at most six decimal places within the contract's range, a cause of bounded length, a
positive Pennylane id). An event those tests do not accept goes through the contract's models
instead (`None` here), which accept it or raise the contract's own validation error.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from stockpit_contracts import EnvelopeMeta
from stockpit_contracts.payloads.base import MAX_ABS_QUANTITY
from stockpit_contracts.payloads.inventory import StockChanged as StockChangedPayload
from stockpit_contracts.sizes import ensure_fits
from stockpit_runtime import tracing
from stockpit_runtime.outbox import OutboxRow

from inventory.domain.stock import LedgerEntry

EVENT_TYPE = StockChangedPayload.EVENT_TYPE
SCHEMA_VERSION = StockChangedPayload.SCHEMA_VERSION
MAX_CAUSE_CHARS = 2000
MAX_PENNYLANE_ID = 2**63
_LOW, _HIGH = -MAX_ABS_QUANTITY, MAX_ABS_QUANTITY
# The envelope's own rule for tenant ids (a tenant id outside it takes the models' path).
_TENANT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")


def _quantity(value: Decimal) -> str | None:
    """The quantity's JSON text (pydantic writes `str(value)`), or None when the fast test
    cannot tell it is within the contract's bounds."""
    if not _LOW <= value <= _HIGH:
        return None
    text = str(value)
    if "E" in text:
        return None
    point = text.find(".")
    if point >= 0 and len(text) - point > 7:
        return None
    return text


def _text(value: str) -> str:
    """A JSON string, as pydantic writes it (non-ASCII characters left as they are)."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def _random_ids(count: int) -> list[str]:
    """`count` random (version 4) UUIDs as text, from one read of the system's randomness."""
    raw = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        h = raw[start : start + 32]
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}")
    return ids


class StockEventRows:
    """Outbox rows of one unit of work's stock events (one tenant, one time of writing)."""

    def __init__(self, tenant_id: str, topic: str, count: int) -> None:
        self.topic = topic
        self._tenant = tenant_id
        self._plain_tenant = 0 < len(tenant_id) <= 100 and _TENANT_CHARS.issuperset(tenant_id)
        self._occurred_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self._ids = _random_ids(count)
        self._next_id = 0
        self._texts: dict[int, str] = {}
        self._causes: dict[int, tuple[str, str]] = {}

    def id_text(self, value: UUID) -> str:
        """The UUID's text, made once per unit of work."""
        number = value.int
        text = self._texts.get(number)
        if text is None:
            text = self._texts[number] = str(value)
        return text

    def _event_id(self) -> str:
        if self._next_id == len(self._ids):
            self._ids.extend(_random_ids(max(len(self._ids), 64)))
        event_id = self._ids[self._next_id]
        self._next_id += 1
        return event_id

    def _cause(self, cause: EnvelopeMeta | None) -> tuple[str, str]:
        """(correlation id, causation id) as JSON values."""
        if cause is None:
            return f'"{self._event_id()}"', "null"
        known = self._causes.get(id(cause))
        if known is None:
            known = self._causes[id(cause)] = (
                f'"{cause.correlation_id}"',
                f'"{cause.event_id}"',
            )
        return known

    def row(
        self, entry: LedgerEntry, pennylane_id: int | None, cause: EnvelopeMeta | None
    ) -> OutboxRow | None:
        """The stock event of the entry (`entry.stock_changed()`) as an outbox row; None when
        it must go through the contract's models."""
        movement = entry.movement
        text = movement.cause.describe()
        if not self._plain_tenant or len(text) > MAX_CAUSE_CHARS:
            return None
        if pennylane_id is not None and not 0 < pennylane_id < MAX_PENNYLANE_ID:
            return None
        delta = movement.delta
        quantities = [
            _quantity(value)
            for value in (
                entry.real,
                entry.reserved,
                entry.real - entry.reserved,
                entry.incoming,
                delta.real,
                delta.reserved,
                delta.incoming,
            )
        ]
        if None in quantities:
            return None
        real, reserved, available, incoming, delta_real, delta_reserved, delta_incoming = quantities
        key = movement.key
        product_id = self.id_text(key.product_id)
        event_id = self._event_id()
        correlation_id, causation_id = self._cause(cause)
        tenant = self._tenant
        body = (
            f'{{"event_id":"{event_id}","event_type":"{EVENT_TYPE}",'
            f'"schema_version":{SCHEMA_VERSION},"tenant_id":"{tenant}",'
            f'"occurred_at":"{self._occurred_at}","correlation_id":{correlation_id},'
            f'"causation_id":{causation_id},"payload":{{"product_id":"{product_id}",'
            f'"pennylane_product_id":{"null" if pennylane_id is None else pennylane_id},'
            f'"location_id":"{self.id_text(key.location_id)}","real":"{real}",'
            f'"reserved":"{reserved}","available":"{available}","incoming":"{incoming}",'
            f'"delta_real":"{delta_real}","delta_reserved":"{delta_reserved}",'
            f'"delta_incoming":"{delta_incoming}",'
            f'"cause":{_text(text)},'
            f'"ledger_entry_id":"{entry.entry_id}"}}}}'
        ).encode()
        ensure_fits(EVENT_TYPE, body)
        causation = "" if cause is None else f',"stockpit-causation-id":{causation_id}'
        headers = (
            f'{{"stockpit-event-id":"{event_id}","stockpit-event-type":"{EVENT_TYPE}",'
            f'"stockpit-schema-version":"{SCHEMA_VERSION}","stockpit-tenant-id":"{tenant}",'
            f'"stockpit-occurred-at":"{self._occurred_at}",'
            f'"stockpit-correlation-id":{correlation_id}{causation}}}'
        )
        if tracing.ACTIVE:
            headers = tracing.staged_headers(headers, None if cause is None else cause.event_id)
        return self.topic, f"{tenant}:{product_id}".encode(), body, headers
