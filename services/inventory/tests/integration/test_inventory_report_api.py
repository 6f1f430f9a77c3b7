"""The shop owner's first day over HTTP on real PostgreSQL and Kafka: a stock count previewed,
refused when a row is bad, applied; an invoice that makes stock negative shows in the sync
report with its number; sync runs and write failures reach the report over Kafka; problems are
acknowledged; the stock exports as CSV; ledger, orders and returns show document numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from inventory.domain.stock_count import MAX_COUNT_BYTES, MAX_COUNT_ROWS
from stockpit_contracts import new_event
from stockpit_contracts.payloads.catalog import ProductUpserted
from stockpit_contracts.payloads.documents import DocumentKind
from stockpit_contracts.payloads.outbound import PennylaneWriteFailed
from stockpit_contracts.payloads.poller import SyncRunFinished
from stockpit_contracts.topics import (
    OUTBOUND_RESULTS,
    PENNYLANE_CATALOG,
    PENNYLANE_DOCUMENTS,
    POLLER_SYNC_RUNS,
)
from stockpit_runtime.settings import ServiceSettings
from stockpit_testing.inventory import T0, document, publish, wait_handled

pytestmark = pytest.mark.integration

TENANT = "boutique"
BASE = f"/tenants/{TENANT}"
D = Decimal
GLOBAL_CAP = ServiceSettings.model_fields["http_max_body_bytes"].default


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _count(api: httpx.AsyncClient, text: str, **params: Any) -> httpx.Response:
    return await api.post(
        f"{BASE}/counts",
        content=text.encode(),
        params=params,
        headers={"content-type": "text/csv"},
    )


async def _ledger(api: httpx.AsyncClient, product_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await _ok(await api.get(f"{BASE}/products/{product_id}/ledger"))
    return rows


async def test_count_then_an_invoice_making_stock_negative_is_reported_with_its_number(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> None:
    await _ok(await api.put(f"{BASE}/settings", json={}))  # the tenant and its first location
    [principal] = await _ok(await api.get(f"{BASE}/locations"))
    van = await _ok(await api.post(f"{BASE}/locations", json={"name": "Camionnette"}), 201)
    products = [
        ProductUpserted(pennylane_id=1, label="Chaise pliante", reference="CH-1", updated_at=T0),
        ProductUpserted(pennylane_id=2, label="Table", reference="TB-2", updated_at=T0),
    ]
    await publish(
        kafka_bootstrap_servers,
        PENNYLANE_CATALOG,
        topic_prefix,
        [new_event(p, TENANT) for p in products],
    )
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.catalog", 2)
    by_sku = {p["sku"]: p for p in await _ok(await api.get(f"{BASE}/products"))}
    chair = by_sku["CH-1"]["product_id"]

    # A file with bad rows is refused whole, every bad row listed; nothing moves.
    bad = (
        "sku;location;counted\n"
        "CH-1;Principal;3\n"
        "XX-9;Principal;1\n"
        "TB-2;Grenier;1\n"
        "TB-2;Camionnette;deux\n"
        "ch-1;principal;4\n"
        "TB-2;Principal;-1\n"
    )
    refused = await _ok(await _count(api, bad, apply="true"), 422)
    assert [(row["line"], row["reason"]) for row in refused["bad_rows"]] == [
        (5, "counted 'deux' is not a number"),
        (7, "counted '-1' is negative"),
    ]
    # Rows that read well are then checked against the catalog.
    unknown = "sku;location;counted\nCH-1;Principal;3\nXX-9;Principal;1\nTB-2;Grenier;1\n"
    unknown += "ch-1;principal;4\n"
    refused = await _ok(await _count(api, unknown, apply="true"), 422)
    assert [(row["line"], row["reason"]) for row in refused["bad_rows"]] == [
        (3, "unknown SKU 'XX-9'"),
        (4, "unknown location 'Grenier'"),
        (5, "'Chaise pliante' at 'Principal' is already counted on line 2"),
    ]
    assert await _ledger(api, chair) == []

    # Preview (French spreadsheet: semicolons, decimal commas), then apply.
    good = (
        "sku;location;counted\r\nCH-1;Principal;3\r\nTB-2;Camionnette;2,5\r\nTB-2;Principal;0\r\n"
    )
    preview = await _ok(await _count(api, good))
    assert preview["applied"] is False
    assert preview["count_id"] is None
    assert [
        (
            line["product_name"],
            line["sku"],
            line["location_name"],
            D(line["current_real"]),
            D(line["counted"]),
            D(line["difference"]),
        )
        for line in preview["lines"]
    ] == [
        ("Chaise pliante", "CH-1", "Principal", D(0), D(3), D(3)),
        ("Table", "TB-2", "Camionnette", D(0), D("2.5"), D("2.5")),
        ("Table", "TB-2", "Principal", D(0), D(0), D(0)),
    ]
    assert preview["changed"] == 2
    assert await _ledger(api, chair) == []
    applied = await _ok(await _count(api, good, apply="true", note="inventaire"), 201)
    assert applied["applied"] is True
    assert applied["changed"] == 2
    [entry] = await _ledger(api, chair)
    assert (entry["cause_kind"], entry["reference"], D(entry["delta_real"])) == (
        "count",
        f"count:{applied['count_id']}",
        D(3),
    )
    assert entry["note"] == "inventaire"

    # An invoice of 5 chairs: 3 counted, so real stock -2, reported with the invoice's number.
    invoice = document(DocumentKind.INVOICE, 42, [(1, "5")], customer=7).model_copy(
        update={"number": "F-2026-0042", "issued_on": date(2026, 11, 2)}
    )
    credit = document(DocumentKind.CREDIT_NOTE, 43, [(1, "-1")], minute=5, credited=42)
    credit = credit.model_copy(update={"number": "AV-2026-0003", "issued_on": date(2026, 11, 3)})
    await publish(
        kafka_bootstrap_servers,
        PENNYLANE_DOCUMENTS,
        topic_prefix,
        [new_event(invoice, TENANT), new_event(credit, TENANT)],
    )
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.documents", 2)

    report = await _ok(await api.get(f"{BASE}/report"))
    [problem] = report["problems"]
    assert problem["kind"] == "negative_stock"
    assert (problem["product_name"], problem["sku"]) == ("Chaise pliante", "CH-1")
    assert (problem["location_id"], problem["location_name"]) == (
        principal["location_id"],
        "Principal",
    )
    assert problem["document"]["number"] == "F-2026-0042"
    assert problem["document"]["issued_on"] == "2026-11-02"
    assert problem["summary"] == (
        "negative stock Chaise pliante (CH-1) at Principal after invoice F-2026-0042 of 2026-11-02"
    )
    assert "stockpit count" in problem["hint"]
    assert report["status"]["open_problems"] == 1
    assert report["status"]["open_problems_by_kind"] == {"negative_stock": 1}

    # Document numbers wherever a person reads: ledger, orders, returns.
    invoice_entry, count_entry = await _ledger(api, chair)  # newest first
    assert count_entry["cause_kind"] == "count"
    assert invoice_entry["document"]["label"] == "invoice F-2026-0042 of 2026-11-02"
    [order] = await _ok(await api.get(f"{BASE}/orders"))
    assert [(d["reference"], d["number"]) for d in order["document_details"]] == [
        ("invoice:42", "F-2026-0042")
    ]
    [return_] = await _ok(await api.get(f"{BASE}/returns"))
    assert (return_["document"]["number"], return_["document"]["issued_on"]) == (
        "AV-2026-0003",
        "2026-11-03",
    )
    delivered = await _ok(
        await api.post(
            f"{BASE}/orders/{order['order_id']}/delivery-notes",
            json={"lines": [{"product_id": chair, "quantity": "1"}]},
        ),
        201,
    )
    [note] = delivered["delivery_notes"]
    assert note["number"].startswith("BL-")

    # Acknowledged: still in the report, no longer open.
    acknowledged = await _ok(await api.post(f"{BASE}/problems/{problem['problem_id']}/acknowledge"))
    assert acknowledged == {
        "problem_id": problem["problem_id"],
        "acknowledged": True,
        "was_open": True,
    }
    again = await _ok(await api.post(f"{BASE}/problems/{problem['problem_id']}/acknowledge"))
    assert again["was_open"] is False
    assert (await api.post(f"{BASE}/problems/999999999/acknowledge")).status_code == 404
    status = await _ok(await api.get(f"{BASE}/status"))
    assert (status["open_problems"], status["open_problems_by_kind"]) == (0, {})
    [kept] = await _ok(await api.get(f"{BASE}/problems"))
    assert kept["acknowledged_at"] is not None
    assert await _ok(await api.get(f"{BASE}/problems", params={"open_only": "true"})) == []

    # The stock as CSV: name, SKU, location, real, reserved, available, incoming.
    exported = await api.get(f"{BASE}/stock.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [
        (r["product_name"], r["sku"], r["location"], r["real"], r["available"]) for r in rows
    ] == [
        ("Chaise pliante", "CH-1", "Principal", "-2", "-2"),
        ("Table", "TB-2", "Camionnette", "2.5", "2.5"),
    ]
    semicolons = await api.get(f"{BASE}/stock.csv", params={"separator": "semicolon"})
    assert semicolons.text.splitlines()[0].startswith("product_name;sku;location;real;")
    assert van["name"] == "Camionnette"


async def test_sync_runs_and_write_failures_reach_the_report_over_kafka(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> None:
    customer = await _ok(await api.post(f"{BASE}/customers", json={"name": "Durand SA"}), 201)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    runs = [
        SyncRunFinished(
            started_at=start + timedelta(hours=hour),
            finished_at=start + timedelta(hours=hour, seconds=12),
            streams=("customer_invoices", "products"),
            documents_published=documents,
            outcome=outcome,
            error_kind=kind,
            error=error,
        )
        for hour, documents, outcome, kind, error in [
            (-24 * 40, 99, "succeeded", None, None),  # older than a month: forgotten
            (0, 40, "succeeded", None, None),
            (1, 3, "succeeded", None, None),
            (2, 0, "failed", "token_rejected", "GET /customer_invoices -> 401"),
        ]
    ]
    await publish(
        kafka_bootstrap_servers,
        POLLER_SYNC_RUNS,
        topic_prefix,
        [new_event(run, TENANT) for run in runs],
    )
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.sync-runs", 4)
    # Then a write failure (after the runs: two topics keep no order between them).
    failed = PennylaneWriteFailed(
        entity_kind="customer",
        entity_id=customer["customer_id"],
        reason="422: billing_address is required",
        retryable=False,
    )
    await publish(
        kafka_bootstrap_servers, OUTBOUND_RESULTS, topic_prefix, [new_event(failed, TENANT)]
    )
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.outbound-results", 1)

    # Newest first, one page at a time.
    # (The next page in a `Link: <…>; rel="next"` header, as every list of the API.)
    answer = await api.get(f"{BASE}/sync-runs", params={"limit": 2})
    first = await _ok(answer)
    assert [(r["outcome"], r["documents"]) for r in first] == [
        ("failed", 0),
        ("succeeded", 3),
    ]
    assert first[0]["duration_s"] == 12.0
    assert first[0]["error_kind"] == "token_rejected"
    answer = await api.get(answer.links["next"]["url"])
    assert [r["documents"] for r in await _ok(answer)] == [40]
    assert "next" not in answer.links
    in_range = await _ok(
        await api.get(
            f"{BASE}/sync-runs",
            params={
                "since": (start + timedelta(minutes=30)).isoformat(),
                "until": (start + timedelta(hours=1, minutes=30)).isoformat(),
            },
        )
    )
    assert [r["documents"] for r in in_range] == [3]
    # Days without a zone are UTC days.
    days = {
        "since": start.date().isoformat(),
        "until": (start + timedelta(days=2)).date().isoformat(),
    }
    by_day = await _ok(await api.get(f"{BASE}/sync-runs", params=days))
    assert [r["documents"] for r in by_day] == [0, 3, 40]

    status = await _ok(await api.get(f"{BASE}/status"))
    assert status["needs_new_token"] is True
    assert status["last_sync"]["outcome"] == "failed"
    assert status["open_problems_by_kind"] == {"token_rejected": 1, "write_failed": 1}

    token = await _ok(await api.get(f"{BASE}/problems", params={"kind": "token_rejected"}))
    [rejected] = token
    assert "new token" in rejected["hint"]
    assert rejected["reason"] == "Pennylane refused the token: GET /customer_invoices -> 401"
    answer = await api.get(f"{BASE}/problems", params={"limit": 1})
    page = await _ok(answer)
    assert [p["kind"] for p in page] == ["write_failed"]
    assert "billing_address" in page[0]["reason"]
    answer = await api.get(answer.links["next"]["url"])
    assert [p["kind"] for p in await _ok(answer)] == ["token_rejected"]
    assert "next" not in answer.links
    # The whole report pages its problems the same way.
    answer = await api.get(f"{BASE}/report", params={"limit": 1, "runs": 1})
    report = await _ok(answer)
    assert [p["kind"] for p in report["problems"]] == ["write_failed"]
    assert len(report["sync_runs"]) == 1
    answer = await api.get(answer.links["next"]["url"])
    assert [p["kind"] for p in (await _ok(answer))["problems"]] == ["token_rejected"]
    assert "next" not in answer.links

    # A later successful run: the token works again.
    healed = runs[1].model_copy(
        update={
            "started_at": start + timedelta(hours=3),
            "finished_at": start + timedelta(hours=3, seconds=1),
        }
    )
    await publish(
        kafka_bootstrap_servers, POLLER_SYNC_RUNS, topic_prefix, [new_event(healed, TENANT)]
    )
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.sync-runs", 5)
    healed_status = await _ok(await api.get(f"{BASE}/status"))
    assert healed_status["needs_new_token"] is False
    assert healed_status["open_problems_by_kind"] == {"write_failed": 1}, "the token works again"
    [solved] = await _ok(await api.get(f"{BASE}/problems", params={"kind": "token_rejected"}))
    assert solved["acknowledged_at"] is not None


async def test_bad_requests_answer_4xx_with_reasons(api: httpx.AsyncClient) -> None:
    # A count file has its own body cap, above the service's global one (256 KiB).
    too_large = "sku;location;counted\n" + "CH-1;Principal;1\n" * 200_000
    response = await _count(api, too_large)
    assert response.status_code == 413
    assert f"larger than {MAX_COUNT_BYTES} bytes" in response.json()["detail"]
    count_sized = "sku;location;counted\n" + "NO-SUCH-SKU;Principal;1\n" * MAX_COUNT_ROWS
    assert GLOBAL_CAP < len(count_sized) < MAX_COUNT_BYTES
    read = await _count(api, count_sized)
    assert read.status_code == 422, read.text
    assert read.json()["bad_rows"][0]["line"] == 2
    json_too_large = await api.put(f"{BASE}/settings", content=b" " * (MAX_COUNT_BYTES - 1))
    assert json_too_large.status_code == 413
    assert f"larger than {GLOBAL_CAP} bytes" in json_too_large.json()["detail"]
    assert (await _count(api, "")).json()["bad_rows"] == [
        {"line": 0, "reason": "the file is empty"}
    ]
    form = await api.post(f"{BASE}/counts", files={"file": ("count.csv", b"sku;location;counted")})
    assert form.status_code == 415
    assert (await api.post(f"{BASE}/problems/{2**70}/acknowledge")).status_code == 422
    assert (await api.get(f"{BASE}/problems", params={"cursor": "abc"})).status_code == 422
    huge = {"cursor": "9" * 513}
    assert (await api.get(f"{BASE}/sync-runs", params=huge)).status_code == 422
    assert (await api.get(f"{BASE}/problems", params={"limit": 100_000})).status_code == 422
    assert (await api.get(f"{BASE}/sync-runs", params={"limit": 0})).status_code == 422


async def test_negative_stock_is_one_open_problem_per_product_and_location(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> None:
    """A history of sales from zero makes one problem per product and location, naming the
    latest invoice; once acknowledged, the next one opens a new problem."""

    def invoice(pennylane_id: int, quantity: str, minute: int) -> Any:
        return new_event(
            document(
                DocumentKind.INVOICE, pennylane_id, [(1, quantity), (2, "1")], minute=minute
            ).model_copy(update={"number": f"F-{pennylane_id}"}),
            TENANT,
        )

    # Two invoices in one batch, a third in another.
    await publish(
        kafka_bootstrap_servers,
        PENNYLANE_DOCUMENTS,
        topic_prefix,
        [invoice(1, "2", 0), invoice(2, "3", 1)],
    )
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.documents", 2)
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, [invoice(3, "1", 2)])
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.documents", 3)
    page = await _ok(await api.get(f"{BASE}/problems", params={"kind": "negative_stock"}))
    by_product = {p["product_name"]: p for p in page}
    assert sorted(by_product) == ["Produit 1", "Produit 2"]
    assert by_product["Produit 1"]["occurrences"] == 3
    assert by_product["Produit 1"]["document"]["number"] == "F-3"
    assert "-6" in by_product["Produit 1"]["reason"]
    status = await _ok(await api.get(f"{BASE}/status"))
    assert status["open_problems_by_kind"] == {"negative_stock": 2}

    await _ok(
        await api.post(f"{BASE}/problems/{by_product['Produit 1']['problem_id']}/acknowledge")
    )
    await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, [invoice(4, "1", 3)])
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.documents", 4)
    page = await _ok(await api.get(f"{BASE}/problems", params={"kind": "negative_stock"}))
    chairs = [p for p in page if p["product_name"] == "Produit 1"]
    assert [(p["document"]["number"], p["acknowledged_at"] is None) for p in chairs] == [
        ("F-4", True),
        ("F-3", False),
    ]
    assert (await _ok(await api.get(f"{BASE}/status")))["open_problems"] == 2


async def test_a_likely_duplicate_is_reported_as_such_with_its_hint(
    api: httpx.AsyncClient,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> None:
    products = [
        ProductUpserted(pennylane_id=1, label="Chaise pliante", reference="CH-1", updated_at=T0),
        ProductUpserted(pennylane_id=9, label="Chaise (copie)", reference="CH-1", updated_at=T0),
    ]
    for product in products:  # one after the other: the second is the duplicate
        await publish(
            kafka_bootstrap_servers, PENNYLANE_CATALOG, topic_prefix, [new_event(product, TENANT)]
        )
    await wait_handled(database_url, db_schema, f"{topic_prefix}inventory.catalog", 2)
    [duplicate] = await _ok(await api.get(f"{BASE}/problems"))
    assert duplicate["kind"] == "likely_duplicate"
    assert (duplicate["product_name"], duplicate["sku"]) == ("Chaise (copie)", "CH-1")
    assert "merge" in duplicate["hint"]
    status = await _ok(await api.get(f"{BASE}/status"))
    assert status["open_problems_by_kind"] == {"likely_duplicate": 1}
