"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); check their shape."""

from __future__ import annotations

import importlib
import importlib.resources
import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
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
            # Their PostgreSQL roles and schemas first (least privilege).
            "db-roles": {"condition": "service_completed_successfully"},
        }
        assert services[name]["command"] == [f"stockpit-{name}"]
        assert "/health/ready" in " ".join(services[name]["healthcheck"]["test"])
    assert services["pennylane-sandbox"]["profiles"] == ["demo"]


def test_each_service_has_its_outbox_relay_beside_it_with_the_same_settings() -> None:
    services = _compose()["services"]
    for name in SERVICES:
        relay, service = services[f"{name}-relay"], services[name]
        assert relay["command"] == ["stockpit-relay", "--schema", name]
        assert relay["restart"] == "unless-stopped"
        # After its service: the schema and its outbox table exist then.
        assert relay["depends_on"] == {name: {"condition": "service_healthy"}}
        for setting in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
            assert relay["environment"][setting] == service["environment"][setting], setting
        assert "STOCKPIT_TOKEN_KEY" not in relay["environment"], "a relay decrypts nothing"
        assert "8001/health/ready" in " ".join(relay["healthcheck"]["test"])


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


# --- Compose for operators (issue 13.7): the schema, Kafka's data, restarts, the demo wiring,
# the observability profile's Prometheus, alerting rules and Grafana dashboard.

DEMO_FILE = ROOT / "compose.demo.yaml"
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
# Series Prometheus makes itself (not the code's).
PROMETHEUS_SERIES = {"up"}
METRIC_NAME = re.compile(r"\b(stockpit_[a-z0-9_]+|up)\b")
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}")


def _yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return schema


def _merged(base: Any, override: Any) -> Any:
    """Compose's merge of an override file, for the mappings these files use (environment,
    depends_on): keys are merged, the override's scalars win."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merged(base[key], value) if key in base else value
        return merged
    return override


def _interpolated(value: object, env: dict[str, str]) -> str:
    """`${VAR}`, `${VAR:-default}` and `${VAR:?error}` as Compose resolves them."""

    def resolve(match: re.Match[str]) -> str:
        name, kind, word = match.groups()
        if env.get(name):
            return env[name]
        assert kind != "?", f"compose requires {name}: {word}"
        return word if kind == "-" else ""

    return INTERPOLATION.sub(resolve, str(value))


def _defined_metrics() -> set[str]:
    """Every series name the code's metrics expose (imported: defining them registers them)."""
    from prometheus_client import REGISTRY

    for module in (
        "stockpit_runtime.operations",
        "stockpit_runtime.consumer",
        "stockpit_runtime.outbox",
        "poller.adapters.metrics",
        "outbound.adapters.metrics",
    ):
        importlib.import_module(module)
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("stockpit_"):
            names |= {family.name + suffix for suffix in suffixes[family.type]}
    return names


def _metrics_named(expression: str) -> set[str]:
    return set(METRIC_NAME.findall(expression))


def _dashboard_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for panel in panels:
        found += [panel, *_dashboard_panels(panel.get("panels", []))]
    return found


def test_compose_files_validate_against_the_compose_specification() -> None:
    schema = _compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    for path in (ROOT / "docker-compose.yml", DEMO_FILE):
        errors = [
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator_class(schema).iter_errors(_yaml(path))
        ]
        assert errors == [], path.name
    # The schema does refuse what Compose refuses (so the check above can fail).
    broken = _compose() | {"services": {"kafka": {"image": "x", "restart": ["always"]}}}
    assert not validator_class(schema).is_valid(broken)


def test_kafka_keeps_its_data_on_its_volume() -> None:
    compose = _compose()
    kafka = compose["services"]["kafka"]
    mounts = dict(volume.split(":", 1) for volume in kafka["volumes"])
    assert "kafka-data" in compose["volumes"]
    # The image writes server.properties from KAFKA_* variables only: log.dirs must be set so.
    assert kafka["environment"]["KAFKA_LOG_DIRS"] == mounts["kafka-data"]
    postgres = compose["services"]["postgres"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]


def test_every_service_restarts_unless_stopped() -> None:
    services = _compose()["services"]
    assert {"kafka", "postgres", "pennylane-sandbox", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        if name == "db-roles":  # a one-shot step the services wait for: it must not loop
            assert service["restart"] == "no"
            continue
        assert service.get("restart") == "unless-stopped", name


def _service_environment(compose: dict[str, Any], name: str, env: dict[str, str]) -> dict[str, str]:
    return {
        key: _interpolated(value, env)
        for key, value in compose["services"][name]["environment"].items()
    }


def test_the_services_read_the_replication_settings_compose_gives_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from poller.entrypoints.app import PollerSettings

    compose = _compose()
    operator = {"STOCKPIT_TOKEN_KEY": "k"}
    environment = _service_environment(compose, "poller", operator)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = PollerSettings()
    assert (settings.topic_replication_factor, settings.topic_min_insync_replicas) == (1, 1)
    # A cluster: the operator sets 3 and 2 (README "Operations").
    cluster = operator | {
        "STOCKPIT_TOPIC_REPLICATION_FACTOR": "3",
        "STOCKPIT_TOPIC_MIN_INSYNC_REPLICAS": "2",
    }
    for key, value in _service_environment(compose, "poller", cluster).items():
        monkeypatch.setenv(key, value)
    settings = PollerSettings()
    assert (settings.topic_replication_factor, settings.topic_min_insync_replicas) == (3, 2)


def test_the_demo_points_the_services_at_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    from outbound.entrypoints.app import OutboundSettings
    from poller.entrypoints.app import PollerSettings
    from stockpit_pennylane.client.client import DEFAULT_BASE_URL

    base = _compose()
    demo = _merged(base, _yaml(DEMO_FILE))
    sandbox = base["services"]["pennylane-sandbox"]
    assert sandbox["profiles"] == ["demo"]
    command = sandbox["command"]
    port = command[command.index("--port") + 1]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    # The sandbox serves Pennylane's paths.
    sandbox_url = f"http://pennylane-sandbox:{port}{urlsplit(DEFAULT_BASE_URL).path}"
    operator = {"STOCKPIT_TOKEN_KEY": "k"}
    for name, settings_class in (("poller", PollerSettings), ("outbound", OutboundSettings)):
        # Without the override, Pennylane itself (or whatever the operator sets).
        for key, value in _service_environment(base, name, operator).items():
            monkeypatch.setenv(key, value)
        assert settings_class().pennylane_base_url == DEFAULT_BASE_URL
        for key, value in _service_environment(demo, name, operator).items():
            monkeypatch.setenv(key, value)
        assert settings_class().pennylane_base_url == sandbox_url, name
        assert demo["services"][name]["depends_on"]["pennylane-sandbox"] == {
            "condition": "service_healthy"
        }
        # Still Kafka and PostgreSQL first, as without the demo.
        assert {"kafka", "postgres"} <= set(demo["services"][name]["depends_on"])


def test_prometheus_scrapes_every_service_and_loads_the_rules() -> None:
    compose = _compose()
    prometheus = compose["services"]["prometheus"]
    grafana = compose["services"]["grafana"]
    assert prometheus["profiles"] == grafana["profiles"] == ["observability"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    config = _yaml(PROMETHEUS / "prometheus.yml")
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for name in SERVICES:
        port = compose["services"][name]["environment"]["STOCKPIT_HTTP_PORT"]
        assert f"{name}:{port}" in targets, name
        assert f"{name}-relay:8001" in targets, f"{name}'s relay"
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        # A target label `service` would rename the Pennylane metrics' own `service` label.
        for static in job["static_configs"]:
            assert "service" not in static.get("labels", {})
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / Path(rule_file).relative_to("/etc/prometheus")).is_file()


def test_alerting_rules_are_well_formed_and_name_metrics_the_code_defines() -> None:
    defined = _defined_metrics()
    groups = _yaml(PROMETHEUS / "alerts.yml")["groups"]
    alerted: set[str] = set()
    names = []
    for group in groups:
        assert set(group) == {"name", "rules"}, group.get("name")
        assert group["rules"], group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert isinstance(rule["alert"], str)
            assert isinstance(rule["expr"], str), rule["alert"]
            assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
            assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
            metrics = _metrics_named(rule["expr"])
            assert metrics, f"{rule['alert']} names no metric"
            assert metrics <= defined | PROMETHEUS_SERIES, (rule["alert"], metrics - defined)
            alerted |= metrics
            names.append(rule["alert"])
    assert len(names) == len(set(names))
    # The important figures each have an alert.
    assert {
        "stockpit_outbox_oldest_age_seconds",
        "stockpit_outbox_relay_consecutive_failures",
        "stockpit_outbox_set_aside_total",
        "stockpit_dead_letters_total",
        "stockpit_consumer_lag",
        "stockpit_pennylane_requests_total",
        "stockpit_outbound_oldest_pending_write_age_seconds",
        "stockpit_poller_sync_lag_max_seconds",
        "stockpit_http_requests_total",
    } <= alerted


def test_grafana_is_provisioned_with_the_repository_dashboard() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in grafana["volumes"][:2])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (datasource,) = _yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = _yaml(GRAFANA / "provisioning" / "dashboards" / "stockpit.yml")["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert list((GRAFANA / "dashboards").glob("*.json")), "no dashboard in the repository"
    for path in (GRAFANA / "dashboards").glob("*.json"):
        for panel in _dashboard_panels(json.loads(path.read_text())["panels"]):
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]


def test_every_dashboard_panel_names_metrics_the_code_defines() -> None:
    defined = _defined_metrics()
    shown: set[str] = set()
    for path in (GRAFANA / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        panels = [p for p in _dashboard_panels(dashboard["panels"]) if p["type"] != "row"]
        assert panels, path.name
        for panel in panels:
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                metrics = _metrics_named(target["expr"])
                assert metrics, f"{panel['title']}: {target['expr']} names no metric"
                assert metrics <= defined | PROMETHEUS_SERIES, (panel["title"], metrics - defined)
                shown |= metrics
    # The figures of issue 13's point 4 are all on it.
    assert {
        "stockpit_outbox_pending",
        "stockpit_outbox_oldest_age_seconds",
        "stockpit_outbox_relay_failures_total",
        "stockpit_outbox_set_aside_total",
        "stockpit_consumer_lag",
        "stockpit_handler_duration_seconds_bucket",
        "stockpit_dead_letters_total",
        "stockpit_pennylane_requests_total",
        "stockpit_outbound_pending_writes",
        "stockpit_outbound_oldest_pending_write_age_seconds",
        "stockpit_poller_sync_lag_max_seconds",
        "stockpit_http_requests_total",
        "stockpit_http_request_duration_seconds_bucket",
    } <= shown


def test_the_metric_check_knows_the_code_s_names_and_refuses_others() -> None:
    defined = _defined_metrics()
    assert "stockpit_handler_duration_seconds_bucket" in defined
    assert "stockpit_outbox_pending" in defined
    assert _metrics_named('rate(stockpit_outbox_pendng{schema="x"}[5m])') - defined == {
        "stockpit_outbox_pendng"
    }
