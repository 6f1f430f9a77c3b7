"""Access tokens and route access (`stockpit_runtime.auth`), without Kafka or PostgreSQL:
what a token must be to be trusted, how a service refuses to start without a way to check
tokens, that no route can exist without its declared access, and the request body cap."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import APIRouter, FastAPI, Request
from stockpit_runtime.auth import (
    AuthConfigError,
    InvalidToken,
    LocalAuthority,
    Scope,
    SecureRouter,
    TokenVerifier,
    check_routes_declare_access,
)
from stockpit_runtime.service import create_service_app
from stockpit_runtime.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def _in(**offset: float) -> dt.datetime:
    """A time this far from now (when the test runs)."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(**offset)


@pytest.fixture
def local(tmp_path: Path) -> LocalAuthority:
    return LocalAuthority.create(tmp_path / "auth")


def _settings(**values: Any) -> ServiceSettings:
    return ServiceSettings(
        DATABASE_URL="postgresql+asyncpg://nobody:nothing@127.0.0.1:1/none", **values
    )


def _verifier(local: LocalAuthority) -> TokenVerifier:
    verifier = TokenVerifier.from_settings(
        _settings(
            auth_public_key_file=str(local.public_key_file),
            auth_issuer=local.issuer,
            auth_audience=local.audience,
        )
    )
    assert verifier is not None
    return verifier


def test_a_token_of_the_trusted_key_names_its_subject_scopes_and_tenants(
    local: LocalAuthority,
) -> None:
    token = local.token(tenants=["acme"], scopes=[Scope.STOCK_READ], subject="alice")
    principal = _verifier(local).verify(token)
    assert principal.subject == "alice"
    assert principal.scopes == {"stock:read"}
    assert principal.may_act_for("acme")
    assert not principal.may_act_for("globex")
    assert not principal.may_act_for(None), "a request over every tenant needs '*'"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": -300}, "expired"),
        ({"nbf": 300}, "not yet valid"),
        ({"aud": "another-api"}, "(?i)audience"),
        ({"iss": "https://someone-else.example"}, "issuer"),
        ({"sub": None}, "sub"),
        ({"scope": 42}, "scope"),
    ],
)
def test_a_token_is_refused_for_its_claims(
    local: LocalAuthority, claims: dict[str, Any], reason: str
) -> None:
    times: dict[str, Any] = {
        name: _in(seconds=claims[name]) for name in ("exp", "nbf") if name in claims
    }
    token = local.token(**{**claims, **times})
    with pytest.raises(InvalidToken, match=reason):
        _verifier(local).verify(token)


def test_a_small_clock_skew_is_tolerated(local: LocalAuthority) -> None:
    token = local.token(exp=_in(seconds=-5), nbf=_in(seconds=5))
    assert _verifier(local).verify(token).subject


def test_a_token_of_another_key_an_id_token_or_an_unsigned_one_is_refused(
    local: LocalAuthority, tmp_path: Path
) -> None:
    verifier = _verifier(local)
    with pytest.raises(InvalidToken, match=r"(?i)signature"):
        verifier.verify(LocalAuthority.create(tmp_path / "other").token())
    key = serialization.load_pem_private_key(local.private_key_file.read_bytes(), None)
    claims = jwt.decode(local.token(), options={"verify_signature": False})
    id_token = jwt.encode(claims, key, algorithm="EdDSA")  # type: ignore[arg-type]
    with pytest.raises(InvalidToken, match="at\\+jwt"):
        verifier.verify(id_token)
    # PyJWT's annotation omits None, the key its "none" algorithm requires.
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"typ": "at+jwt"})  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        verifier.verify(unsigned)

    # The public key used as an HMAC secret (algorithm confusion) is no signature either
    # (PyJWT refuses to make such a token, so it is made by hand here).
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    signed = f"{part({'alg': 'HS256', 'typ': 'at+jwt'})}.{part(claims)}"
    mac = hmac.new(local.public_key_file.read_bytes(), signed.encode(), hashlib.sha256).digest()
    forged = f"{signed}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
    with pytest.raises(InvalidToken):
        verifier.verify(forged)


@pytest.mark.parametrize("kind", ["ES256", "RS256"])
def test_ec_p256_and_rsa_public_keys_are_trusted_too(kind: str, tmp_path: Path) -> None:
    private: Any = (
        ec.generate_private_key(ec.SECP256R1())
        if kind == "ES256"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    pem = tmp_path / "public.pem"
    pem.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    verifier = TokenVerifier.from_settings(
        _settings(auth_public_key_file=str(pem), auth_issuer="idp", auth_audience="api")
    )
    assert verifier is not None
    claims = {"iss": "idp", "aud": "api", "sub": "svc", "exp": _in(minutes=5)}
    token = jwt.encode(claims, private, algorithm=kind, headers={"typ": "at+jwt"})
    assert verifier.verify(token).subject == "svc"


@pytest.fixture
def jwks_url(local: LocalAuthority) -> Iterator[str]:
    """An identity provider's key set on a loopback port (served by the standard library)."""
    public = serialization.load_pem_public_key(local.public_key_file.read_bytes())
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))  # type: ignore[arg-type]
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "EdDSA"}]}).encode()

    class KeySet(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), KeySet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()


async def test_a_jwks_url_supplies_the_keys_by_kid(local: LocalAuthority, jwks_url: str) -> None:
    verifier = TokenVerifier.from_settings(
        _settings(
            auth_jwks_url=jwks_url,
            auth_public_key_file="",
            auth_issuer=local.issuer,
            auth_audience=local.audience,
        )
    )
    assert verifier is not None
    key = serialization.load_pem_private_key(local.private_key_file.read_bytes(), None)
    claims = jwt.decode(local.token(tenants=["acme"]), options={"verify_signature": False})
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"typ": "at+jwt", "kid": "k1"})  # type: ignore[arg-type]
    assert (await verifier.averify(token)).tenants == {"acme"}
    unknown = jwt.encode(claims, key, algorithm="EdDSA", headers={"typ": "at+jwt", "kid": "k9"})  # type: ignore[arg-type]
    with pytest.raises(InvalidToken, match="no key"):
        await verifier.averify(unknown)


def test_a_service_without_key_settings_refuses_to_start_and_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PUBLIC_KEY_FILE", "JWKS_URL", "ISSUER", "AUDIENCE"):
        monkeypatch.delenv(f"STOCKPIT_AUTH_{name}", raising=False)
    with pytest.raises(AuthConfigError) as refused:
        create_service_app(
            _settings(), title="t", description="d", migrations=MIGRATIONS, setup=lambda _: None
        )
    for named in (
        "STOCKPIT_AUTH_PUBLIC_KEY_FILE",
        "STOCKPIT_AUTH_JWKS_URL",
        "STOCKPIT_AUTH_ISSUER",
    ):
        assert named in str(refused.value)
    assert "STOCKPIT_AUTH=disabled" in str(refused.value)
    with pytest.raises(AuthConfigError, match="not a readable PEM"):
        TokenVerifier.from_settings(
            _settings(auth_public_key_file="/nonexistent.pem", auth_issuer="i", auth_audience="a")
        )


async def test_disabled_auth_is_explicit_and_reported_by_readiness(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_service_app(
        _settings(auth="disabled"),
        title="t",
        description="d",
        migrations=MIGRATIONS,
        setup=lambda _: None,
    )
    assert "STOCKPIT_AUTH=disabled" in capsys.readouterr().out
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        ready = await client.get("/health/ready")
        assert ready.json()["auth"] == "disabled"
        # Anyone is an operator then: the route is reached (its input is checked as usual).
        assert (await client.get("/operations/dead-letters?limit=0")).status_code == 422


def test_no_route_can_exist_without_a_declared_access() -> None:
    app = FastAPI()
    plain = APIRouter()

    @plain.get("/tenants/{tenant_id}/secrets")
    async def secrets(tenant_id: str) -> str:
        return tenant_id

    app.include_router(plain)
    with pytest.raises(RuntimeError, match="GET /tenants/\\{tenant_id\\}/secrets"):
        check_routes_declare_access(app)
    router = SecureRouter()
    with pytest.raises(TypeError, match="scope= or public="):
        router.get("/x")
    with pytest.raises(TypeError, match="scope= or public="):
        router.post("/x", scope=Scope.STOCK_WRITE, public="both")


@pytest.fixture
async def service(local: LocalAuthority) -> AsyncIterator[httpx.AsyncClient]:
    """A service app (not started: no database is reached here) with the shared routes and
    one that reads a body."""
    api = SecureRouter()

    @api.post("/tenants/{tenant_id}/notes", scope=Scope.STOCK_WRITE)
    async def note(tenant_id: str, body: list[int]) -> int:
        return len(body)

    @api.post("/tenants/{tenant_id}/files", scope=Scope.STOCK_WRITE, max_body_bytes=50_000)
    async def file(tenant_id: str, request: Request) -> int:
        return len(await request.body())

    app = create_service_app(
        _settings(
            auth_public_key_file=str(local.public_key_file),
            auth_issuer=local.issuer,
            auth_audience=local.audience,
            http_max_body_bytes=10_000,
        ),
        title="t",
        description="d",
        migrations=MIGRATIONS,
        setup=lambda _: None,
        api=api,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        yield client


async def test_a_tenant_limited_operator_names_its_tenant_and_bad_parameters_are_422(
    service: httpx.AsyncClient, local: LocalAuthority
) -> None:
    limited = local.headers(tenants=["acme"], scopes=[Scope.OPERATIONS_ADMIN])
    spanning = await service.get("/operations/dead-letters", headers=limited)
    assert spanning.status_code == 403
    assert "every tenant" in spanning.json()["detail"]
    other = await service.get("/operations/dead-letters?tenant_id=globex", headers=limited)
    assert other.status_code == 403
    assert "globex" in other.json()["detail"]
    assert "insufficient_scope" in other.headers["www-authenticate"]
    operator = local.headers()
    for query in ("limit=-1", "limit=501", "limit=1e20", "cursor=%00", "cursor=bm90IGEgbGlzdA"):
        answer = await service.get(f"/operations/dead-letters?{query}", headers=operator)
        assert answer.status_code == 422, (query, answer.text)
    assert (
        await service.post("/operations/dead-letters/0/replay", headers=operator)
    ).status_code == 422


async def test_a_body_over_the_cap_is_413_whether_declared_or_streamed(
    service: httpx.AsyncClient, local: LocalAuthority
) -> None:
    small = await service.post("/tenants/acme/notes", json=[1, 2], headers=local.headers())
    assert small.json() == 2
    big = b"[" + b"1," * 10_000 + b"1]"
    declared = await service.post("/tenants/acme/notes", content=big, headers=local.headers())
    assert declared.status_code == 413
    assert "larger than 10000 bytes" in declared.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b" " * 1000

    streamed = await service.post("/tenants/acme/notes", content=chunks(), headers=local.headers())
    assert streamed.status_code == 413
    unauthenticated = await service.post("/tenants/acme/notes", content=big)
    assert unauthenticated.status_code == 413, "refused before anything reads it"


async def test_a_route_may_declare_its_own_body_cap_and_the_openapi_tells_it(
    service: httpx.AsyncClient, local: LocalAuthority
) -> None:
    file = await service.post("/tenants/acme/files", content=b"x" * 40_000, headers=local.headers())
    assert file.json() == 40_000, "over the global cap, under the route's"
    over = await service.post("/tenants/acme/files", content=b"x" * 50_001, headers=local.headers())
    assert over.status_code == 413
    assert "larger than 50000 bytes" in over.json()["detail"]
    note = await service.post("/tenants/acme/notes", content=b"x" * 40_000, headers=local.headers())
    assert note.status_code == 413, "other routes keep the global cap"
    assert "larger than 10000 bytes" in note.json()["detail"]
    openapi = (await service.get("/openapi.json")).json()
    assert openapi["paths"]["/tenants/{tenant_id}/files"]["post"]["x-max-body-bytes"] == 50_000
