"""Commands that manage a tenant's Pennylane connection and trigger syncs."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

from stockpit_contracts.payloads.base import Payload, PennylaneId, register
from stockpit_contracts.topics import CONNECTION_COMMANDS, CONNECTION_EVENTS

REDACTED = "**redacted**"
MIN_SYNC_INTERVAL_S = 5
DEFAULT_SYNC_INTERVAL_S = 30 * 60
MAX_SYNC_INTERVAL_S = 86_400
# 24 of the token's 25 requests per window: outbound always keeps one.
MAX_POLLER_RATE_SHARE = Decimal("0.96")


class ConnectionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Kept for wire compatibility and not acted on: the sync interval has one home, the tenant's
    # settings in Stockpit (inventory), which the poller follows through `TenantSettingsChanged`.
    sync_interval_s: int = Field(
        default=DEFAULT_SYNC_INTERVAL_S,
        ge=MIN_SYNC_INTERVAL_S,
        le=MAX_SYNC_INTERVAL_S,
        description="ignored: the sync interval is set in Stockpit's tenant settings",
    )
    documents_since: date | None = Field(
        default=None,
        description=(
            "first sync imports documents dated from this day on; connecting without it stores"
            " the connection day (UTC)"
        ),
    )
    # At most 0.96, as the share below: outbound keeps at least one request of the 25 in every
    # window, so a larger share would take the two services over the token's limit.
    poller_rate_share: Decimal = Field(
        default=Decimal("0.6"),
        gt=0,
        le=MAX_POLLER_RATE_SHARE,
        description="share of the token's 25 requests / 5 s for the poller; outbound gets the rest",
    )
    poller_first_sync_rate_share: Decimal = Field(
        default=Decimal("0.9"),
        gt=0,
        le=MAX_POLLER_RATE_SHARE,
        description=(
            "the poller's share while the tenant's first sync runs (never below"
            " poller_rate_share); outbound gets the rest meanwhile"
        ),
    )


@register
class ConnectTenant(Payload):
    """Kept only so that such a message is recognised and refused: connect is HTTP-only (the
    poller's `PUT /connections/{tenant}`), so a Pennylane token never sits in a topic. Written
    by this code, the token is replaced by `**redacted**`; a consumer dead-letters the command with
    its token redacted."""

    EVENT_TYPE = "connection.connect"
    TOPIC = CONNECTION_COMMANDS

    pennylane_token: SecretStr = Field(min_length=8, max_length=500)
    settings: ConnectionSettings = ConnectionSettings()

    @field_serializer("pennylane_token", when_used="json")
    def _never_on_the_wire(self, token: SecretStr) -> str:
        return REDACTED


@register
class DisconnectTenant(Payload):
    """Stop every read and write for the tenant at once; its data stays."""

    EVENT_TYPE = "connection.disconnect"
    TOPIC = CONNECTION_COMMANDS


@register
class ReconnectTenant(Payload):
    """Resume from the stored watermarks (or re-scan when they left Pennylane's 4-week window)."""

    EVENT_TYPE = "connection.reconnect"
    TOPIC = CONNECTION_COMMANDS


@register
class ImportNow(Payload):
    """'Import invoices now' / 'import purchase orders now': sync at once instead of waiting."""

    EVENT_TYPE = "connection.import_now"
    TOPIC = CONNECTION_COMMANDS

    what: Literal["invoices", "purchase_orders", "everything"] = "everything"


def redact_connection_command(raw: bytes) -> bytes:
    """A connection command as it may be kept in dead letters: without its Pennylane token.

    A body that is not a JSON object cannot be searched for a token reliably, so it is withheld
    whole (its size is kept, for the operator).
    """
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return f"<withheld: {len(raw)} bytes that are not a JSON object>".encode()
    payload = data.get("payload")
    if isinstance(payload, dict) and "pennylane_token" in payload:
        data["payload"] = {**payload, "pennylane_token": REDACTED}
    return json.dumps(data).encode()


@register
class ConnectionRepointed(Payload):
    """The operator moved the tenant to another Pennylane company (emitted by the poller in the
    transaction that resets its own state): every Pennylane id kept of the old company must be
    forgotten, so that the new company's ids, which may be the same numbers, never match it."""

    EVENT_TYPE = "connection.repointed"
    TOPIC = CONNECTION_EVENTS

    pennylane_company_id: PennylaneId
    # None when the tenant was not pinned to a company before.
    previous_pennylane_company_id: PennylaneId | None = None
