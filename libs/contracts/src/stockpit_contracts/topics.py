"""Every topic, what it carries and how it is keyed, in one place.

Keys decide ordering: Kafka keeps order only within a partition, so each topic's key names the
unit whose events must never be reordered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class KeyScope(StrEnum):
    TENANT = "tenant_id"
    TENANT_PRODUCT = "tenant_id:product_id"
    TENANT_ENTITY = "tenant_id:entity_kind:entity_id"


@dataclass(frozen=True, slots=True)
class Topic:
    base_name: str
    key: KeyScope
    why: str

    def name(self, prefix: str = "") -> str:
        """The broker-side name; tests and side-by-side deployments set a prefix."""
        return f"{prefix}{self.base_name}"

    def dead_letters(self, prefix: str = "") -> str:
        return f"{self.name(prefix)}.dlq"


CONNECTION_COMMANDS = Topic(
    "stockpit.connections.commands",
    KeyScope.TENANT,
    "connect, disconnect, reconnect and import-now for one tenant apply in the order given",
)
PENNYLANE_DOCUMENTS = Topic(
    "stockpit.pennylane.documents",
    KeyScope.TENANT,
    "an invoice and a purchase order from one quote are one sale, and a later version must follow"
    " an earlier one: every document event of a tenant is applied in the order it was read",
)
PENNYLANE_CATALOG = Topic(
    "stockpit.pennylane.catalog",
    KeyScope.TENANT,
    "product and customer changes of a tenant apply in the order Pennylane logged them",
)
INVENTORY_STOCK = Topic(
    "stockpit.inventory.stock",
    KeyScope.TENANT_PRODUCT,
    "stock changes of one product arrive in ledger order; products are independent",
)
INVENTORY_PROBLEMS = Topic(
    "stockpit.inventory.problems",
    KeyScope.TENANT,
    "conflicts, negative stock and unknown references, for operators",
)
INVENTORY_SETTINGS = Topic(
    "stockpit.inventory.settings",
    KeyScope.TENANT,
    "a tenant's settings changes (set in Stockpit, their one home) apply in the order made",
)
OUTBOUND_REQUESTS = Topic(
    "stockpit.outbound.requests",
    KeyScope.TENANT_ENTITY,
    "writes for one Stockpit record (product, customer, receipt) reach Pennylane in the order made",
)
OUTBOUND_RESULTS = Topic(
    "stockpit.outbound.results",
    KeyScope.TENANT_ENTITY,
    "Pennylane ids assigned and write failures, per Stockpit record",
)
CONNECTION_EVENTS = Topic(
    "stockpit.connections.events",
    KeyScope.TENANT,
    "what happened to a tenant's Pennylane connection (re-pointed to another company), in order",
)
POLLER_SYNC_RUNS = Topic(
    "stockpit.poller.sync_runs",
    KeyScope.TENANT,
    "how each sync run of a tenant ended, in the order the runs ended (the tenant's report)",
)

ALL_TOPICS: tuple[Topic, ...] = (
    CONNECTION_COMMANDS,
    PENNYLANE_DOCUMENTS,
    PENNYLANE_CATALOG,
    INVENTORY_STOCK,
    INVENTORY_PROBLEMS,
    INVENTORY_SETTINGS,
    OUTBOUND_REQUESTS,
    OUTBOUND_RESULTS,
    POLLER_SYNC_RUNS,
    CONNECTION_EVENTS,
)


def partition_key(tenant_id: str, *parts: str | int) -> bytes:
    """The Kafka key: the tenant first, then whatever narrows the ordering unit."""
    return ":".join((tenant_id, *(str(part) for part in parts))).encode()
