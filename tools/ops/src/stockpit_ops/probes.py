"""What the end-to-end tests, drills and the system benchmark read and drive over HTTP.

The sandbox's admin surface gives Pennylane's state without rate limits or injected faults,
so the expected stock is computed from Pennylane's own records, and the services are read
through their public APIs only, with the access token `authorize` registered for each service
(`running_system` registers an operator's).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

if TYPE_CHECKING:
    from stockpit_ops.system import RunningSystem

T = TypeVar("T")
SERVICE_ACCOUNT_PREFIX = "706"
# Service base URL → the bearer token `http` sends to it.
_tokens: dict[str, str] = {}


def authorize(base_url: str, token: str) -> None:
    """Send `token` with every `http` call to a URL under `base_url`."""
    _tokens[base_url.rstrip("/")] = token


def forget(base_url: str) -> None:
    _tokens.pop(base_url.rstrip("/"), None)


def auth_headers(url: str) -> dict[str, str]:
    for base_url, token in _tokens.items():
        if url == base_url or url.startswith(base_url + "/"):
            return {"Authorization": f"Bearer {token}"}
    return {}


def http(
    method: str, url: str, body: Any = None, *, headers: dict[str, str] | None = None, **params: Any
) -> Any:
    """One call; a paged list (a `Link: rel="next"` header) is read whole, page after page."""
    response = _request(method, url, body, params, headers)
    result = response.json() if response.content else None
    while isinstance(result, list) and "next" in response.links:
        next_url = str(response.url.join(response.links["next"]["url"]))
        response = _request(method, next_url, None, {}, headers)
        result += response.json()
    return result


def _request(
    method: str, url: str, body: Any, params: dict[str, Any], headers: dict[str, str] | None
) -> httpx.Response:
    response = httpx.request(
        method,
        url,
        json=body,
        params=params or None,
        headers={**auth_headers(url), **(headers or {})},
        timeout=30,
    )
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {url} → {response.status_code}: {response.text[:500]}")
    return response


def wait_until(what: str, probe: Callable[[], T | None], timeout_s: float = 180) -> T:
    """Poll `probe` until it returns something; a probe that cannot reach a service (it may be
    restarting) counts as "not yet". The timeout is a liveness bound, not a speed check."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except (httpx.HTTPError, RuntimeError) as exc:
            last_error, result = exc, None
        if result is not None:
            return result
        time.sleep(0.3)
    raise TimeoutError(f"gave up waiting ({timeout_s:.0f} s): {what}; last error: {last_error}")


class SandboxAdmin:
    """The sandbox's `/_sandbox` surface: Pennylane's state as it really is, and its knobs."""

    def __init__(self, sandbox_url: str) -> None:
        self.url = sandbox_url + "/_sandbox"
        self.api_url = sandbox_url + "/api/external/v2"

    def records(self, token: str, resource: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = http("GET", f"{self.url}/{token}/records/{resource}")["items"]
        return items

    def seed_invoices(self, token: str, **body: Any) -> dict[str, Any]:
        created: dict[str, Any] = http("POST", f"{self.url}/{token}/seed/customer_invoices", body)
        return created

    def rename_product(self, token: str, product_id: int, label: str) -> dict[str, Any]:
        """A rename made in Pennylane by its user (through the public API, as any client)."""
        product: dict[str, Any] = http(
            "PUT",
            f"{self.api_url}/products/{product_id}",
            {"label": label},
            headers={"Authorization": f"Bearer {token}"},
        )
        return product

    def revoke_token(self, token: str, new_token: str) -> None:
        """The user revokes the token in Pennylane and makes a new one for the same company."""
        http("POST", f"{self.url}/{token}/revoke", {"new_token": new_token})

    def requests_refused(self, token: str) -> int:
        """How many requests arrived with `token` after it was revoked."""
        logged = http("GET", f"{self.url}/{token}/requests")["requests"]
        return sum(entry["outcome"] == "revoked" for entry in logged)

    def set_faults(self, **rates: Any) -> None:
        http("PUT", f"{self.url}/faults", rates)

    def faults(self) -> dict[str, Any]:
        shown: dict[str, Any] = http("GET", f"{self.url}/faults")
        return shown

    def clear_faults(self) -> None:
        http("PUT", f"{self.url}/faults", {})

    def writes(self, token: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = http("GET", f"{self.url}/{token}/writes")["items"]
        return items

    def service_products(self, token: str) -> set[int]:
        return service_products(
            self.records(token, "products"), self.records(token, "ledger_accounts")
        )

    def product_quantities(self, token: str) -> dict[int, dict[str, Decimal]]:
        """Per product id, the summed line quantities of the company's `finalized_invoices`,
        `credit_notes` and `drafts` (the sandbox aggregates; a large company's records are
        too heavy to list)."""
        items = http("GET", f"{self.url}/{token}/product_quantities")["items"]
        return {
            int(item.pop("product_id")): {kind: Decimal(value) for kind, value in item.items()}
            for item in items
        }

    def expected_stock_from_quantities(self, token: str) -> dict[int, Decimal]:
        """`expected_stock` computed from the sandbox's per-product quantities."""
        services = self.service_products(token)
        return {
            product: -quantities["finalized_invoices"]
            for product, quantities in self.product_quantities(token).items()
            if product not in services and quantities["finalized_invoices"] != 0
        }

    def expected_stock(self, token: str) -> dict[int, Decimal]:
        """Real stock per Pennylane product id that the company's documents imply, with the
        default settings: finalized invoices take stock, credit notes give none back, drafts
        and services move nothing."""
        return expected_stock(
            self.records(token, "customer_invoices"),
            self.records(token, "products"),
            self.records(token, "ledger_accounts"),
        )


def service_products(
    products: Iterable[Mapping[str, Any]], ledger_accounts: Iterable[Mapping[str, Any]]
) -> set[int]:
    """Products booked on a 706 account ("Prestations de services"): they hold no stock."""
    account_numbers = {account["id"]: str(account["number"]) for account in ledger_accounts}
    return {
        product["id"]
        for product in products
        if account_numbers.get((product.get("ledger_account") or {}).get("id"), "").startswith(
            SERVICE_ACCOUNT_PREFIX
        )
    }


def expected_stock(
    invoices: Iterable[Mapping[str, Any]],
    products: Iterable[Mapping[str, Any]],
    ledger_accounts: Iterable[Mapping[str, Any]],
) -> dict[int, Decimal]:
    services = service_products(products, ledger_accounts)
    stock: dict[int, Decimal] = defaultdict(Decimal)
    for invoice in invoices:
        is_credit_note = Decimal(str(invoice["amount"])) < 0
        if invoice["draft"] or is_credit_note:
            continue
        for line in invoice["invoice_lines_items"]:
            product = line.get("product")
            if product is not None and product["id"] not in services:
                stock[product["id"]] -= Decimal(str(line["quantity"]))
    return {pid: qty for pid, qty in stock.items() if qty != 0}


class Inventory:
    """One tenant in the inventory service's HTTP API."""

    def __init__(self, system: RunningSystem, tenant: str) -> None:
        self.system = system
        self.tenant = tenant

    @property
    def url(self) -> str:
        return self.system.url("inventory") + f"/tenants/{self.tenant}"

    def stock_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = http("GET", f"{self.url}/stock")
        return rows

    def real_stock(self) -> dict[int, Decimal]:
        """Real stock per Pennylane product id (non-zero only), summed over locations."""
        stock: dict[int, Decimal] = defaultdict(Decimal)
        for row in self.stock_rows():
            if row["pennylane_product_id"] is not None:
                stock[row["pennylane_product_id"]] += Decimal(str(row["real"]))
        return {pid: qty for pid, qty in stock.items() if qty != 0}

    def products(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = http("GET", f"{self.url}/products")
        return rows

    def product_id(self, pennylane_id: int) -> str:
        for product in self.products():
            if product["pennylane_id"] == pennylane_id:
                return str(product["product_id"])
        raise LookupError(f"no product linked to Pennylane product {pennylane_id}")


def connect(
    system: RunningSystem,
    tenant: str,
    token: str,
    *,
    sync_interval_s: int = 5,
    documents_since: dt.date | None = None,
    poller_rate_share: Decimal | None = None,
    from_connection_day: bool = False,
) -> None:
    """The sync interval is a tenant setting in Stockpit (inventory), its one home: the poller
    follows it through inventory's settings events. `poller_rate_share` None: the default.
    Documents from `documents_since`, else a year back; `from_connection_day`: as a new user
    connects, no start day given (documents from the connection day on, or the day kept)."""
    since = documents_since or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=365)
    set_sync_interval(system, tenant, sync_interval_s)
    settings: dict[str, str] = {} if from_connection_day else {"documents_since": since.isoformat()}
    if poller_rate_share is not None:
        settings["poller_rate_share"] = str(poller_rate_share)
    http(
        "PUT",
        system.url("poller") + f"/connections/{tenant}",
        {"pennylane_token": token, "settings": settings},
    )


def set_sync_interval(system: RunningSystem, tenant: str, seconds: int) -> None:
    http(
        "PUT",
        system.url("inventory") + f"/tenants/{tenant}/settings",
        {"sync_interval_seconds": seconds},
    )


def disconnect(system: RunningSystem, tenant: str) -> None:
    http("POST", system.url("poller") + f"/connections/{tenant}/disconnect")


def reconnect(system: RunningSystem, tenant: str) -> None:
    http("POST", system.url("poller") + f"/connections/{tenant}/reconnect")


def stock_matches(inventory: Inventory, expected: Mapping[int, Decimal]) -> bool | None:
    """A `wait_until` probe: the tenant's real stock equals `expected` exactly."""
    return True if inventory.real_stock() == dict(expected) else None


def rename_product(inventory: Inventory, product_id: str, name: str) -> None:
    """A Stockpit-side rename: written to Pennylane by outbound (the product is linked)."""
    http("PATCH", f"{inventory.url}/products/{product_id}", {"name": name})


def receive_and_send(inventory: Inventory, product_id: str, quantity: int, supplier: str) -> str:
    """Buy `quantity`, receive all of it and send the receipt to Pennylane (a supplier
    invoice there). Returns the receipt id."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    supplier_id = http("POST", f"{inventory.url}/suppliers", {"name": supplier})["supplier_id"]
    purchase = http(
        "POST",
        f"{inventory.url}/purchases",
        {
            "supplier_id": supplier_id,
            "lines": [
                {
                    "product_id": product_id,
                    "quantity": str(quantity),
                    "unit_price_before_tax": "10.00",
                    "vat_rate": "FR_200",
                }
            ],
        },
    )
    purchase = http(
        "POST",
        f"{inventory.url}/purchases/{purchase['purchase_id']}/receipts",
        {"lines": [{"product_id": product_id, "quantity": str(quantity)}], "received_on": today},
    )
    receipt_id = str(purchase["receipts"][-1]["receipt_id"])
    http(
        "POST",
        f"{inventory.url}/purchases/{purchase['purchase_id']}/receipts/{receipt_id}/send",
    )
    return receipt_id


def consumer_lag(bootstrap_servers: str, group: str, topic: str) -> int:
    """Records of `topic` not yet committed by consumer `group`, summed over partitions (a
    partition the group never committed counts whole)."""
    return asyncio.run(_consumer_lag(bootstrap_servers, group, topic))


async def _consumer_lag(bootstrap_servers: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        (description,) = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        lag = 0
        for partition in partitions:
            done = committed.get(partition)
            lag += ends[partition] - (done.offset if done is not None and done.offset >= 0 else 0)
        return lag
    finally:
        await consumer.stop()
        await admin.close()
