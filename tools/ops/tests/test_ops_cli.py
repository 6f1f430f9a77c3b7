"""The operator command against stand-in service APIs (httpx mocked: no services needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from stockpit_ops import cli
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    """Record requests and answer them like the services would."""
    seen: list[tuple[str, str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, str(request.url), body))
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
