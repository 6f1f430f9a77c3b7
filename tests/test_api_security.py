"""Every HTTP route of every service, taken from the app itself (never a hand-kept list):
who may call it, and what a fuzzer finds when it may.

- `test_every_route_answers_only_the_right_token`: for each route (method and path of the app's
  routes, which must be those of its OpenAPI), no token → 401 with `WWW-Authenticate: Bearer`;
  a token of another key, an expired one → 401; a token of another tenant, or without the
  route's scope → 403; the right token → neither 401, 403 nor 5xx. The scope each route must
  declare follows the product's rule (`expected_access`), not the code's declarations.
- `test_schemathesis_finds_no_server_error_and_every_answer_is_documented`: Schemathesis
  generates requests from each service's OpenAPI (in process, over ASGI) with an operator's
  token, data that fits the schema and data that does not: no 5xx, every status, content type
  and body as documented.

Each test runs one service on its own topics and schema; Pennylane is the sandbox.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from inventory.entrypoints.app import InventorySettings
from inventory.entrypoints.app import create_app as create_inventory
from outbound.entrypoints.app import OutboundSettings
from outbound.entrypoints.app import create_app as create_outbound
from pennylane_sandbox import SandboxConfig
from pennylane_sandbox import create_app as create_sandbox
from pennylane_sandbox.serving import serve_in_thread
from poller.entrypoints.app import PollerSettings
from poller.entrypoints.app import create_app as create_poller
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from stockpit_connections import TokenCipher
from stockpit_runtime.auth import ALL_SCOPES, LocalAuthority, Scope, route_access
from stockpit_testing.fixtures import drop_schemas, operator_headers

pytestmark = pytest.mark.integration

SERVICES = ("inventory", "poller", "outbound")
TENANT = "acme"
PENNYLANE_TOKEN = "acme-pennylane-token"
# Examples per operation and kind of data: enough to reach the parameters' edge cases, few
# enough for each service's run to take well under a minute.
FUZZ_EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 3}


def expected_access(service: str, method: str, path: str) -> str:
    """The access a route must declare (issue 12): health, metrics and the interface
    documents are open; operations need operations:admin, connections connections:admin;
    inventory reads stock:read and changes stock:write."""
    if path.startswith(("/health/", "/asyncapi")) or path == "/metrics":
        return "public"
    if path.startswith("/operations/") or service == "outbound":
        return Scope.OPERATIONS_ADMIN
    if service == "poller":
        return Scope.CONNECTIONS_ADMIN
    return Scope.STOCK_READ if method == "GET" else Scope.STOCK_WRITE


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    with serve_in_thread(create_sandbox(SandboxConfig(tokens=[PENNYLANE_TOKEN]))) as url:
        yield url


@pytest.fixture
async def connections_schema(database_url: str, db_schema: str) -> AsyncIterator[str]:
    name = f"{db_schema}_c"
    yield name
    await drop_schemas(database_url, name)


@pytest.fixture
def build(
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    connections_schema: str,
    sandbox_url: str,
) -> Callable[[str], FastAPI]:
    """The named service's app on the test's topics and schema (not started)."""
    common: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": database_url,
        "topic_prefix": topic_prefix,
        "db_schema": db_schema,
        "consumer_max_attempts": 1,
    }
    pennylane = sandbox_url + "/api/external/v2"

    def app_of(service: str) -> FastAPI:
        if service == "inventory":
            return create_inventory(InventorySettings(**common))
        if service == "poller":
            return create_poller(
                PollerSettings(
                    **common,
                    connections_schema=connections_schema,
                    token_key=SecretStr(TokenCipher.generate_key()),
                    pennylane_base_url=pennylane,
                )
            )
        return create_outbound(
            OutboundSettings(
                **common,
                pennylane_base_url=pennylane,
                pennylane_tokens={TENANT: SecretStr(PENNYLANE_TOKEN)},
                poller_budget_share=Decimal("0.5"),
                startup_quiet_s=0,
            )
        )

    return app_of


def _concrete(path: str, parameters: list[dict[str, Any]]) -> str:
    """The path with its parameters filled: the test's tenant, a fresh UUID, a small id."""
    kinds = {p["name"]: p.get("schema", {}) for p in parameters if p.get("in") == "path"}
    for name, schema in kinds.items():
        if name == "tenant_id":
            value = TENANT
        elif schema.get("format") == "uuid":
            value = str(uuid.uuid4())
        elif schema.get("type") == "integer":
            value = "1"
        else:
            value = "x"
        path = path.replace("{" + name + "}", value)
    return path


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_answers_only_the_right_token(
    service: str, build: Callable[[str], FastAPI], tmp_path: Path
) -> None:
    app = build(service)
    access = route_access(app)
    openapi = app.openapi()
    documented = {
        (method.upper(), path)
        for path, operations in openapi["paths"].items()
        for method in operations
    }
    assert documented <= set(access), "every documented operation is a route"
    scheme = openapi["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    stranger = LocalAuthority.create(tmp_path / "stranger")  # same issuer, another key
    now = dt.datetime.now(dt.UTC)
    failures: list[str] = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client,
    ):
        for (method, path), declared in sorted(access.items()):
            expected = expected_access(service, method, path)
            if declared != expected:
                failures.append(f"{method} {path}: declares {declared}, must be {expected}")
                continue
            operation = openapi["paths"].get(path, {}).get(method.lower(), {})
            url = _concrete(path, operation.get("parameters", []))
            body: dict[str, Any] | None = {} if "requestBody" in operation else None

            async def call(
                headers: dict[str, str], method: str = method, url: str = url, body: Any = body
            ) -> Any:
                return await client.request(method, url, json=body, headers=headers)

            if expected == "public":
                answer = await call({})
                if answer.status_code != 200:
                    failures.append(f"{method} {path} (open): {answer.status_code}")
                continue
            if operation and operation.get("security") != [{"bearer": [expected]}]:
                failures.append(f"{method} {path}: OpenAPI security {operation.get('security')}")
            # A route over every tenant (no tenant in its path) needs a token for "*".
            own = [TENANT] if "{tenant_id}" in path else ["*"]
            other_scopes = [scope for scope in ALL_SCOPES if scope != expected]
            refused = [
                ("no token", {}, 401),
                ("a token of another key", stranger.headers(tenants=own), 401),
                (
                    "an expired token",
                    operator_headers(tenants=own, exp=now - dt.timedelta(minutes=10)),
                    401,
                ),
                ("another tenant's token", operator_headers(tenants=["someone-else"]), 403),
                (
                    "a token without the scope",
                    operator_headers(tenants=own, scopes=other_scopes),
                    403,
                ),
            ]
            for what, headers, status in refused:
                answer = await call(headers)
                if answer.status_code != status:
                    failures.append(f"{method} {path} with {what}: {answer.status_code}")
                elif status == 401 and not answer.headers.get("www-authenticate", "").startswith(
                    "Bearer"
                ):
                    failures.append(f"{method} {path} with {what}: no WWW-Authenticate: Bearer")
                elif status == 403 and not answer.json().get("detail"):
                    failures.append(f"{method} {path} with {what}: 403 without a reason")
            answer = await call(operator_headers(tenants=own, scopes=[expected]))
            if answer.status_code in (401, 403) or answer.status_code >= 500:
                failures.append(
                    f"{method} {path} with the right token: {answer.status_code} "
                    f"{answer.text[:200]}"
                )
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("service", SERVICES)
def test_schemathesis_finds_no_server_error_and_every_answer_is_documented(
    service: str, build: Callable[[str], FastAPI]
) -> None:
    """Schemathesis starts the app's lifespan in its own event loop (its ASGI client) and stops
    it at the end."""
    app = build(service)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = operator_headers()
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    failures: dict[str, BaseException] = {}
    try:
        for result, mode in itertools.product(schema.get_all_operations(), GenerationMode):
            operation = result.ok()

            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=FUZZ_EXAMPLES[mode],
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=checks)

            try:
                fuzz()
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, "valid data can always be made"
                # An operation without parameters or body has no invalid request to make.
            except Exception as exc:
                failures[f"{operation.label} ({mode} data)"] = exc
    finally:
        shutdown_lifespans()
    assert not failures, "\n\n".join(f"{label}: {exc}" for label, exc in failures.items())
