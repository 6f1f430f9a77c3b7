"""Key rotation end to end: a new key is put first in STOCKPIT_TOKEN_KEY (poller and outbound
restarted with "new,old"), `stockpit rotate-token-keys` re-encrypts every stored token, and the
services then run with the new key alone: the tenants' syncs go on."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from stockpit_ops import cli
from stockpit_ops.probes import Inventory, SandboxAdmin, connect, stock_matches, wait_until
from stockpit_ops.system import RunningSystem, SystemConfig, running_system
from typer.testing import CliRunner

pytestmark = pytest.mark.e2e

TOKENS = {"acme": "acme-rotation-token", "bistro": "bistro-rotation-token"}


def _restart_with_key(system: RunningSystem, key: str) -> None:
    for service in ("poller", "outbound"):
        process = system.services[service]
        process.env = {**process.env, "STOCKPIT_TOKEN_KEY": key}
        process.stop()
        process.start()


def test_rotation_re_encrypts_every_token_so_the_old_key_can_go(
    kafka_bootstrap_servers: str,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path,
        tokens=tuple(TOKENS.values()),
    )
    old, new = config.token_key, Fernet.generate_key().decode()
    with running_system(config) as system:
        sandbox = SandboxAdmin(system.sandbox_url)
        inventories = {tenant: Inventory(system, tenant) for tenant in TOKENS}
        for seed, (tenant, token) in enumerate(TOKENS.items()):
            sandbox.seed_invoices(token, count=4, seed=seed, products=2, max_lines=2)
            connect(system, tenant, token)

        _restart_with_key(system, f"{new},{old}")
        monkeypatch.setenv("STOCKPIT_POLLER_URL", system.url("poller"))
        monkeypatch.setenv("STOCKPIT_TOKEN", system.token())
        rotated = CliRunner().invoke(cli.app, ["rotate-token-keys"], terminal_width=200)
        assert rotated.exit_code == 0, rotated.output
        assert "re-encrypted 2 token(s) with the newest of 2 key(s)" in rotated.output

        _restart_with_key(system, new)
        for seed, token in enumerate(TOKENS.values(), start=10):
            sandbox.seed_invoices(token, count=3, seed=seed, products=2, max_lines=2)
        for tenant, token in TOKENS.items():
            wait_until(
                f"{tenant}'s stock follows its invoices with the new key alone",
                lambda t=tenant, tok=token: stock_matches(  # type: ignore[misc]
                    inventories[t], sandbox.expected_stock(tok)
                ),
            )
