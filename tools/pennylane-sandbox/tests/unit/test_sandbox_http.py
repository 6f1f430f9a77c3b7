"""Over real HTTP (uvicorn on a loopback port): rate limiting, injected faults, dropped
connections, the request log and the console command."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pennylane_sandbox import FaultSettings, SandboxConfig
from pennylane_sandbox.__main__ import build_config, parse_args

API = "/api/external/v2"
Start = Callable[[SandboxConfig], Any]


def _client(base_url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"})


async def test_rate_limit_headers_and_plain_text_429(served_factory: Start) -> None:
    # A one-hour window keeps the test independent of how fast the machine runs it.
    served = served_factory(
        SandboxConfig(tokens=["a", "b"], rate_limit=5, rate_window_seconds=3600)
    )
    base_url = served.base_url
    async with _client(base_url, "a") as http_a, _client(base_url, "b") as http_b:
        remaining = []
        for _ in range(5):
            response = await http_a.get(f"{API}/me")
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "5"
            assert "retry-after" not in response.headers
            remaining.append(int(response.headers["ratelimit-remaining"]))
            assert int(response.headers["ratelimit-reset"]) > 0
        assert remaining == [4, 3, 2, 1, 0]
        limited = await http_a.get(f"{API}/me")
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith("text/plain")
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 3600
        assert limited.text == f"Rate limit exceeded. Please retry in {retry_after} seconds."
        assert limited.headers["ratelimit-remaining"] == "0"
        # Each token is its own company with its own budget.
        assert (await http_b.get(f"{API}/me")).status_code == 200
        log = (await http_a.get("/_sandbox/a/requests")).json()
    assert [entry["outcome"] for entry in log["requests"]] == ["ok"] * 5 + ["rate_limited"]
    assert log["max_admitted_in_any_window"] == 5
    assert log["max_received_in_any_window"] == 6


async def test_injected_fault_shares_follow_the_seed(served_factory: Start) -> None:
    settings = FaultSettings(
        rate_429=0.1, rate_500=0.1, rate_503=0.1, rate_delay=0.1, delay_seconds=0.001
    )
    outcomes = []
    for _ in range(2):
        served = served_factory(
            SandboxConfig(tokens=["a"], rate_limit=100_000, faults=settings, seed=42)
        )
        async with _client(served.base_url, "a") as http:
            statuses = [(await http.get(f"{API}/me")).status_code for _ in range(400)]
            faults = (await http.get("/_sandbox/faults")).json()
        outcomes.append(statuses)
        counts = Counter(statuses)
        for status in (429, 500, 503):
            assert 20 <= counts[status] <= 60, counts
        assert counts[200] + counts[429] + counts[500] + counts[503] == 400
        assert 20 <= faults["injected"]["delayed"] <= 60
    assert outcomes[0] == outcomes[1]


async def test_faults_can_be_switched_at_run_time_for_one_token(served_factory: Start) -> None:
    served = served_factory(SandboxConfig(tokens=["a", "b"], rate_limit=100_000))
    base_url = served.base_url
    async with _client(base_url, "a") as http_a, _client(base_url, "b") as http_b:
        switched = await http_a.put("/_sandbox/faults", json={"token": "a", "rate_503": 1})
        assert switched.status_code == 200
        assert (await http_a.get(f"{API}/me")).status_code == 503
        assert (await http_b.get(f"{API}/me")).status_code == 200
        await http_a.put("/_sandbox/faults", json={})
        assert (await http_a.get(f"{API}/me")).status_code == 200


async def test_dropped_connections_reach_the_client_as_protocol_errors(
    served_factory: Start,
) -> None:
    served = served_factory(
        SandboxConfig(tokens=["a"], rate_limit=100_000, faults=FaultSettings(rate_drop=1.0))
    )
    async with _client(served.base_url, "a") as http:
        for _ in range(3):
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(f"{API}/me")
        log = (await http.get("/_sandbox/a/requests")).json()
    assert [entry["outcome"] for entry in log["requests"]] == ["dropped"] * 3


def test_cli_flags_build_the_config() -> None:
    config = build_config(
        parse_args(
            [
                "--tokens",
                "x,y",
                "--rate-limit",
                "7",
                "--fault-500",
                "0.25",
                "--seed",
                "9",
                "--token-scopes",
                "y=products:readonly+customers:all",
            ]
        )
    )
    assert list(config.tokens) == ["x", "y"]
    assert config.rate_limit == 7
    assert config.faults.rate_500 == 0.25
    assert config.seed == 9
    assert config.token_scopes == {"y": frozenset({"products:readonly", "customers:all"})}


def test_console_command_serves_the_api() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = shutil.which("pennylane-sandbox", path=os.path.dirname(sys.executable))
    assert command is not None
    process = subprocess.Popen(
        [command, "--host", "127.0.0.1", "--port", str(port), "--tokens", "tokA,tokB"]
    )
    try:
        response = None
        for _ in range(600):
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}{API}/me",
                    headers={"Authorization": "Bearer tokB"},
                    timeout=1,
                )
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    break
                time.sleep(0.05)
        assert response is not None, "the sandbox never answered"
        assert response.status_code == 200
        assert response.json()["company"]["reg_no"].startswith("sandbox-")
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_each_token_is_a_company_of_its_own_on_me_stable_across_restarts(
    served_factory: Start,
) -> None:
    identities = []
    for tokens in (["a", "b", "c"], ["c", "b", "a"]):
        served = served_factory(SandboxConfig(tokens=tokens))
        seen = {}
        for token in tokens:
            async with _client(served.base_url, token) as http:
                me = (await http.get(f"{API}/me")).json()
            seen[token] = (me["company"]["id"], me["company"]["name"], me["company"]["reg_no"])
            assert me["user"]["id"] != me["company"]["id"]
        identities.append(seen)
    first, restarted = identities
    assert len({company[0] for company in first.values()}) == 3, "distinct companies"
    assert len({company[1] for company in first.values()}) == 3
    assert first == restarted, "a token names the same company after a restart"


async def test_a_revoked_token_is_refused_and_logged_and_its_company_takes_a_new_one(
    served_factory: Start,
) -> None:
    served = served_factory(SandboxConfig(tokens=["old-token"], rate_limit=100_000))
    async with _client(served.base_url, "old-token") as old:
        company = (await old.get(f"{API}/me")).json()["company"]["id"]
        revoked = await old.post("/_sandbox/old-token/revoke", json={"new_token": "new-token"})
        assert revoked.status_code == 200, revoked.text
        assert (await old.get(f"{API}/me")).status_code == 401
        assert (await old.get(f"{API}/customer_invoices")).status_code == 401
        log = (await old.get("/_sandbox/old-token/requests")).json()
        assert [(e["status"], e["outcome"]) for e in log["requests"]] == [
            (200, "ok"),
            (401, "revoked"),
            (401, "revoked"),
        ]
        taken = await old.post("/_sandbox/old-token/revoke", json={"new_token": "new-token"})
        assert taken.status_code == 404
    async with _client(served.base_url, "new-token") as new:
        me = await new.get(f"{API}/me")
        assert me.status_code == 200
        assert me.json()["company"]["id"] == company, "the same company, a new token"
        [logged] = (await new.get("/_sandbox/new-token/requests")).json()["requests"]
        assert logged["status"] == 200
