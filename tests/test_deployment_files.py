"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); check their shape."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("poller", "inventory", "outbound")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_names_every_service_with_health_checks_and_start_order() -> None:
    services = _compose()["services"]
    assert {"kafka", "postgres", *SERVICES, "pennylane-sandbox"} <= set(services)
    for name in ("kafka", "postgres", *SERVICES, "pennylane-sandbox"):
        assert "healthcheck" in services[name], name
    for name in SERVICES:
        assert services[name]["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
        }
        assert services[name]["command"] == [f"stockpit-{name}"]
        assert "/health/ready" in " ".join(services[name]["healthcheck"]["test"])
    assert services["pennylane-sandbox"]["profiles"] == ["demo"]


def test_compose_commands_are_console_scripts_the_workspace_declares() -> None:
    scripts: set[str] = set()
    for pyproject in ROOT.glob("*/*/pyproject.toml"):
        scripts |= set(tomllib.loads(pyproject.read_text()).get("project", {}).get("scripts", {}))
    for name, service in _compose()["services"].items():
        command = service.get("command")
        if command:
            assert command[0] in scripts, f"{name} runs {command[0]}, which no package declares"


def test_the_dockerfile_copies_every_workspace_member() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    members = sorted(p.parent.relative_to(ROOT) for p in ROOT.glob("*/*/pyproject.toml"))
    for member in members:
        assert f"COPY {member}/pyproject.toml" in dockerfile, member
    assert "uv sync --frozen" in dockerfile
