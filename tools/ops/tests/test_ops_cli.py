"""The operator command against stand-in service APIs (httpx mocked: no services needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from stockpit_ops import cli
from stockpit_runtime.auth import LocalAuthority, Scope, TokenVerifier
from stockpit_runtime.settings import ServiceSettings
from typer.testing import CliRunner

runner = CliRunner()
authorizations: list[str | None] = []


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    """Record requests and answer them like the services would."""
    seen: list[tuple[str, str, Any]] = []
    authorizations.clear()

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, str(request.url), body))
        authorizations.append(request.headers.get("Authorization"))
        path = request.url.path
        if path == "/connections/acme" or path.startswith("/connections/acme/"):
            return httpx.Response(200, json={"tenant_id": "acme", "status": "connected"})
        if path == "/tenants/acme/settings":
            return httpx.Response(200, json=body)
        if path == "/tenants/acme/stock":
            row = {
                "product_id": "p1",
                "location_id": "l1",
                "real": "5.000000",
                "reserved": "2",
                "available": "3",
                "incoming": "0",
            }
            return httpx.Response(200, json=[row])
        if path.endswith("/merge-into/orig-1"):
            product = {"name": "Chaise", "pennylane_id": 12}
            return httpx.Response(200, json={"original": product, "duplicate": product})
        if path == "/operations/rotate-token-keys":
            return httpx.Response(200, json={"rotated": 3, "keys_configured": 2})
        if path == "/operations/dead-letters/7/replay":
            return httpx.Response(202, json={"id": 7})
        return httpx.Response(404, json={"detail": f"no {path}"})

    def fake_request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=httpx.MockTransport(handler)) as client:
            return client.request(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", fake_request)
    return seen


def test_connect_sends_the_token_from_a_file_and_the_interval(
    calls: list[tuple[str, str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interval is a Stockpit setting (inventory), the token goes to the poller."""
    monkeypatch.setenv("STOCKPIT_POLLER_URL", "http://poller.test")
    monkeypatch.setenv("STOCKPIT_INVENTORY_URL", "http://inventory.test")
    token_file = tmp_path / "token"
    token_file.write_text("secret-token\n")
    result = runner.invoke(
        cli.app, ["connect", "acme", "--token-file", str(token_file), "--interval", "60"]
    )
    assert result.exit_code == 0, result.output
    assert calls == [
        ("PUT", "http://inventory.test/tenants/acme/settings", {"sync_interval_seconds": 60}),
        (
            "PUT",
            "http://poller.test/connections/acme",
            {"pennylane_token": "secret-token", "settings": {}},
        ),
    ]
    assert "secret-token" not in result.output


def test_stock_prints_normalised_quantities(calls: list[tuple[str, str, Any]]) -> None:
    result = runner.invoke(cli.app, ["stock", "acme"])
    assert result.exit_code == 0, result.output
    assert "5 " in result.output or "│ 5" in result.output
    assert "5.000000" not in result.output


def test_an_error_answer_exits_non_zero_with_the_reason(
    calls: list[tuple[str, str, Any]],
) -> None:
    result = runner.invoke(cli.app, ["dead-letters", "replay", "inventory", "7", "8"])
    assert result.exit_code == 1
    assert "404" in result.output
    assert [url.rsplit("/", 2)[-2] for _, url, _ in calls] == ["7", "8"]


def test_merge_posts_to_inventory_and_writes_nothing_else(
    calls: list[tuple[str, str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKPIT_INVENTORY_URL", "http://inventory.test")
    result = runner.invoke(cli.app, ["merge", "acme", "dup-1", "orig-1"])
    assert result.exit_code == 0, result.output
    assert calls == [
        ("POST", "http://inventory.test/tenants/acme/products/dup-1/merge-into/orig-1", None)
    ]
    assert "merged into Chaise" in result.output


def test_every_call_carries_the_token_of_stockpit_token_or_of_the_token_file(
    calls: list[tuple[str, str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKPIT_TOKEN", "from-the-environment")
    assert runner.invoke(cli.app, ["status", "acme"]).exit_code == 0
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    result = runner.invoke(cli.app, ["--token-file", str(token_file), "stock", "acme"])
    assert result.exit_code == 0, result.output
    # status reads the poller and inventory, stock reads inventory.
    assert authorizations == [*["Bearer from-the-environment"] * 2, "Bearer from-the-file"]


def test_dev_token_mints_a_token_the_services_accept_from_the_local_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = LocalAuthority.create(tmp_path / "auth")
    result = runner.invoke(
        cli.app,
        [
            "dev-token",
            "--tenant",
            "acme",
            "--scope",
            "stock:read",
            "--scope",
            "stock:write",
            "--key-dir",
            str(authority.directory),
        ],
    )
    assert result.exit_code == 0, result.output
    for name, value in authority.service_env().items():
        monkeypatch.setenv(name, value)
    verifier = TokenVerifier.from_settings(ServiceSettings())
    assert verifier is not None
    principal = verifier.verify(result.stdout.strip())
    assert principal.tenants == {"acme"}
    assert principal.scopes == {Scope.STOCK_READ, Scope.STOCK_WRITE}


def test_dev_token_is_refused_without_a_local_private_key(tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app,
        ["dev-token", "--tenant", "acme", "--scope", "stock:read", "--key-dir", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "no local private key" in result.output


def test_dev_token_refuses_an_unknown_scope(tmp_path: Path) -> None:
    authority = LocalAuthority.create(tmp_path)
    result = runner.invoke(
        cli.app,
        [
            "dev-token",
            "--tenant",
            "a",
            "--scope",
            "stock:all",
            "--key-dir",
            str(authority.directory),
        ],
    )
    assert result.exit_code == 1
    assert "unknown scope" in result.output


REPORT = {
    "status": {
        "tenant_id": "acme",
        "open_problems": 1,
        "open_problems_by_kind": {"negative_stock": 1},
        "needs_new_token": False,
        "last_sync": {
            "run_id": 3,
            "started_at": "2026-11-02T09:00:00Z",
            "finished_at": "2026-11-02T09:00:12Z",
            "duration_s": 12.0,
            "streams": ["customer_invoices"],
            "documents": 4,
            "outcome": "succeeded",
            "error_kind": None,
            "error": None,
        },
    },
    "sync_runs": [],
    "problems": [
        {
            "problem_id": 9,
            "kind": "negative_stock",
            "reported_at": "2026-11-02T09:00:11Z",
            "summary": "negative stock Chaise (CH-1) at Principal after invoice F-2026-0042",
            "reason": "real stock is -2",
            "hint": "count it",
            "subject_kind": "product",
            "subject_id": "p1",
            "product_id": "p1",
            "product_name": "Chaise",
            "sku": "CH-1",
            "location_id": "l1",
            "location_name": "Principal",
            "document": {"number": "F-2026-0042", "issued_on": "2026-11-02"},
            "acknowledged_at": None,
        }
    ],
}


@pytest.fixture
def inventory(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """The inventory's report, count and export answers (a wide console: no wrapped cells)."""
    monkeypatch.setattr(cli, "console", Console(width=300))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/tenants/acme/report":
            following = '</tenants/acme/report?kind=negative_stock&cursor=WzEwXQ>; rel="next"'
            return httpx.Response(200, json=REPORT, headers={"Link": following})
        if path == "/tenants/acme/stock.csv":
            return httpx.Response(200, text="product_name,sku\nChaise,CH-1\n")
        if path == "/tenants/acme/counts" and b"bad" in request.content:
            bad = [{"line": 3, "reason": "unknown SKU 'XX'"}]
            return httpx.Response(422, json={"detail": "refused", "bad_rows": bad})
        if path == "/tenants/acme/counts":
            applied = request.url.params["apply"] == "true"
            line = {
                "line": 2,
                "product_id": "p1",
                "product_name": "Chaise",
                "sku": "CH-1",
                "location_id": "l1",
                "location_name": "Principal",
                "current_real": "-2.000000",
                "counted": "3",
                "difference": "5.000000",
            }
            body = {
                "applied": applied,
                "count_id": "c1" if applied else None,
                "rows": 1,
                "changed": 1,
                "lines": [line],
            }
            return httpx.Response(201 if applied else 200, json=body)
        if path.startswith("/tenants/acme/problems/"):
            return httpx.Response(200, json={"problem_id": 9, "acknowledged": True})
        return httpx.Response(404, json={"detail": f"no {path}"})

    def fake_request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(transport=httpx.MockTransport(handler)) as client:
            return client.request(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", fake_request)
    return seen


def test_report_shows_the_invoice_number_product_location_and_hint(
    inventory: list[httpx.Request],
) -> None:
    result = runner.invoke(cli.app, ["report", "acme", "--kind", "negative_stock", "--open-only"])
    assert result.exit_code == 0, result.output
    for shown in ("F-2026-0042", "2026-11-02", "Chaise", "CH-1", "Principal", "count it"):
        assert shown in result.output
    assert "--cursor WzEwXQ" in result.output
    params = inventory[0].url.params
    assert (params["kind"], params["open_only"]) == ("negative_stock", "true")


def test_count_previews_then_applies_and_lists_bad_rows(
    inventory: list[httpx.Request], tmp_path: Path
) -> None:
    file = tmp_path / "count.csv"
    file.write_text("sku;location;counted\nCH-1;Principal;3\n")
    preview = runner.invoke(cli.app, ["count", "acme", str(file)])
    assert preview.exit_code == 0, preview.output
    assert "Preview" in preview.output
    assert "+5" in preview.output
    assert "--apply" in preview.output
    assert inventory[0].content == file.read_bytes()
    applied = runner.invoke(cli.app, ["count", "acme", str(file), "--apply"])
    assert applied.exit_code == 0, applied.output
    assert "Applied" in applied.output
    file.write_text("bad")
    refused = runner.invoke(cli.app, ["count", "acme", str(file)])
    assert refused.exit_code == 1
    assert "unknown SKU 'XX'" in refused.output
    assert "refused" in refused.output


def test_stock_csv_is_written_as_is(inventory: list[httpx.Request]) -> None:
    result = runner.invoke(cli.app, ["stock", "acme", "--csv", "--semicolons"])
    assert result.exit_code == 0, result.output
    assert result.output == "product_name,sku\nChaise,CH-1\n"
    assert inventory[0].url.params["separator"] == "semicolon"


def test_status_adds_the_open_problems_when_inventory_answers(
    calls: list[tuple[str, str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "console", Console(width=200))
    alone = runner.invoke(cli.app, ["status", "acme"])
    assert alone.exit_code == 0, alone.output
    assert "open_problems" not in alone.output

    real_request = httpx.request

    def with_inventory(method: str, url: str, **kwargs: Any) -> httpx.Response:
        if url.endswith("/tenants/acme/status"):
            return httpx.Response(200, json={"open_problems": 3, "needs_new_token": True})
        return real_request(method, url, **kwargs)

    monkeypatch.setattr(httpx, "request", with_inventory)
    both = runner.invoke(cli.app, ["status", "acme"])
    assert both.exit_code == 0, both.output
    assert "open_problems" in both.output
    assert "needs_new_token" in both.output


def test_ack_acknowledges_each_problem(inventory: list[httpx.Request]) -> None:
    result = runner.invoke(cli.app, ["ack", "acme", "9", "10"])
    assert result.exit_code == 0, result.output
    assert [r.url.path for r in inventory] == [
        "/tenants/acme/problems/9/acknowledge",
        "/tenants/acme/problems/10/acknowledge",
    ]


def test_db_roles_says_which_passwords_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in ("POLLER", "INVENTORY", "OUTBOUND"):
        monkeypatch.delenv(f"STOCKPIT_DB_PASSWORD_{service}", raising=False)
    monkeypatch.setenv("STOCKPIT_DB_PASSWORD_POLLER", "x")
    result = runner.invoke(
        cli.app, ["db-roles", "--admin-url", "postgresql+asyncpg://a:b@127.0.0.1:1/x"]
    )
    assert result.exit_code == 2
    assert "STOCKPIT_DB_PASSWORD_INVENTORY" in result.output
    assert "STOCKPIT_DB_PASSWORD_OUTBOUND" in result.output


def test_rotate_token_keys_reports_what_the_poller_did(
    calls: list[tuple[str, str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKPIT_POLLER_URL", "http://poller.test")
    result = runner.invoke(cli.app, ["rotate-token-keys"])
    assert result.exit_code == 0, result.output
    assert calls == [("POST", "http://poller.test/operations/rotate-token-keys", None)]
    assert "re-encrypted 3 token(s) with the newest of 2 key(s)" in result.output
