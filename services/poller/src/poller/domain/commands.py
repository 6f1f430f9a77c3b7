"""What the poller is asked to do about a tenant's connection: from its HTTP API (all of them)
or from Kafka (all but connect and re-point, which carry a token). Handled by the functions of
`service_layer.handlers`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr
from stockpit_contracts.payloads.connections import ConnectionSettings

ImportWhat = Literal["invoices", "purchase_orders", "everything"]


@dataclass(frozen=True)
class Connect:
    tenant_id: str
    token: SecretStr
    settings: ConnectionSettings


@dataclass(frozen=True)
class Repoint:
    """Move the tenant to the token's Pennylane company (the operator's explicit choice)."""

    tenant_id: str
    token: SecretStr
    settings: ConnectionSettings


@dataclass(frozen=True)
class Disconnect:
    tenant_id: str


@dataclass(frozen=True)
class Reconnect:
    tenant_id: str


@dataclass(frozen=True)
class ImportNow:
    tenant_id: str
    what: ImportWhat = "everything"


@dataclass(frozen=True)
class FollowSettings:
    """The tenant's sync interval as Stockpit holds it."""

    tenant_id: str
    sync_interval_s: int
