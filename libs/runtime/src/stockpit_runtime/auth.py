"""Who may call a service's HTTP API: OAuth2 bearer access tokens in the JWT profile (RFC 9068).

Every service verifies tokens the same way, from the same settings (`ServiceSettings.auth_*`):
the signature with an identity provider's key set (`STOCKPIT_AUTH_JWKS_URL`) or one PEM public
key (`STOCKPIT_AUTH_PUBLIC_KEY_FILE`), then `iss`, `aud`, `exp` and `nbf` (with a small leeway)
and the `typ` header (`at+jwt`, so an ID token is never taken for an access token). Claims used:
`sub`, `scope` (space-separated) and `tenants` (tenant ids, `["*"]` for operators).

A route exists only with its access declared: routes are made with `SecureRouter`, whose
`get`/`post`/... take `scope=` (a `Scope` the token must carry) or `public=` (why the route is
open), and `check_routes_declare_access` (run by `create_service_app`) refuses to build an app
holding any route that declares neither. The tenant a request acts for is the path's
`{tenant_id}`, else its `?tenant_id=`; a request naming no tenant acts on every tenant and needs
a token for `"*"`.

`LocalAuthority` is the local identity provider of the demo, the tests and `stockpit dev-token`:
an Ed25519 key pair in a directory, and tokens minted with it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import APIRouter, FastAPI, HTTPException, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from pydantic import BaseModel
from starlette.routing import Route, compile_path

if TYPE_CHECKING:
    from stockpit_runtime.settings import ServiceSettings


class Scope(StrEnum):
    """What a token allows, as OAuth2 scopes."""

    STOCK_READ = "stock:read"  # read stock, ledger, orders, products, customers, settings…
    STOCK_WRITE = "stock:write"  # change any of them
    CONNECTIONS_ADMIN = "connections:admin"  # connect, disconnect, reconnect, import now, status
    OPERATIONS_ADMIN = "operations:admin"  # dead letters, outbound writes, replays


ALL_SCOPES = tuple(Scope)
ALL_TENANTS = "*"
ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
ALGORITHMS = ("EdDSA", "ES256", "RS256")
LOCAL_ISSUER = "stockpit-local"
LOCAL_AUDIENCE = "stockpit"


class AuthConfigError(RuntimeError):
    """The service was given no usable way to verify tokens; it must not start."""


@dataclass(frozen=True)
class Principal:
    """The caller a verified token names."""

    subject: str
    scopes: frozenset[str]
    tenants: frozenset[str]

    def may_act_for(self, tenant_id: str | None) -> bool:
        """`None`: the request acts on every tenant."""
        if ALL_TENANTS in self.tenants:
            return True
        return tenant_id is not None and tenant_id in self.tenants


ANONYMOUS_OPERATOR = Principal(
    "anonymous (STOCKPIT_AUTH=disabled)", frozenset(ALL_SCOPES), frozenset({ALL_TENANTS})
)


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why (it never holds the token)."""


class TokenVerifier:
    """Checks a bearer token and returns its principal."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        leeway_s: float,
        public_key: Any = None,
        jwks_client: jwt.PyJWKClient | None = None,
    ) -> None:
        if (public_key is None) == (jwks_client is None):
            raise ValueError("give one of a public key or a key set")
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._public_key = public_key
        self._jwks_client = jwks_client
        self._algorithms = [_algorithm_of(public_key)] if public_key is not None else ALGORITHMS

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> TokenVerifier | None:
        """The verifier the settings ask for; `None` when auth is disabled explicitly."""
        if settings.auth == "disabled":
            return None
        missing = [
            name
            for name, value in (
                ("STOCKPIT_AUTH_ISSUER", settings.auth_issuer),
                ("STOCKPIT_AUTH_AUDIENCE", settings.auth_audience),
            )
            if not value
        ]
        key_file, jwks_url = settings.auth_public_key_file, settings.auth_jwks_url
        if bool(key_file) == bool(jwks_url):
            missing.append(
                "exactly one of STOCKPIT_AUTH_JWKS_URL (an identity provider's key set) or "
                "STOCKPIT_AUTH_PUBLIC_KEY_FILE (a PEM public key: Ed25519, ES256 or RS256)"
            )
        if missing:
            raise AuthConfigError(
                "the HTTP API needs a way to verify access tokens: set "
                + "; ".join(missing)
                + " (or STOCKPIT_AUTH=disabled to run without authentication, never in "
                "production; `stockpit dev-token` explains the local key)"
            )
        common = {
            "issuer": settings.auth_issuer,
            "audience": settings.auth_audience,
            "leeway_s": settings.auth_leeway_s,
        }
        if key_file:
            try:
                key = serialization.load_pem_public_key(Path(key_file).read_bytes())
            except (OSError, ValueError) as exc:
                raise AuthConfigError(
                    f"STOCKPIT_AUTH_PUBLIC_KEY_FILE={key_file}: not a readable PEM public key "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            _algorithm_of(key)  # refuse an unsupported key type now, not at the first request
            return cls(public_key=key, **common)  # type: ignore[arg-type]
        client = jwt.PyJWKClient(
            jwks_url, cache_keys=True, lifespan=settings.auth_jwks_cache_s, timeout=10
        )
        return cls(jwks_client=client, **common)  # type: ignore[arg-type]

    def verify(self, token: str) -> Principal:
        """Blocking only when a key set must be (re)fetched: call `averify` from async code."""
        try:
            header = jwt.get_unverified_header(token)
            if str(header.get("typ", "")).lower() not in ACCEPTED_TYPES:
                raise InvalidToken('not an access token (the "typ" header must be "at+jwt")')
            key = (
                self._jwks_client.get_signing_key_from_jwt(token).key
                if self._jwks_client is not None
                else self._public_key
            )
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self._algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except InvalidToken:
            raise
        except jwt.PyJWKClientError as exc:
            raise InvalidToken(f"no key to verify the token: {exc}") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc) or type(exc).__name__) from None
        return Principal(
            subject=str(claims["sub"]),
            scopes=frozenset(_strings(claims.get("scope", ""), "scope")),
            tenants=frozenset(_strings(claims.get("tenants", []), "tenants")),
        )

    async def averify(self, token: str) -> Principal:
        if self._jwks_client is not None:
            return await asyncio.to_thread(self.verify, token)
        return self.verify(token)


def _strings(value: Any, claim: str) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise InvalidToken(f'the "{claim}" claim must be a string or a list of strings')


def _algorithm_of(key: Any) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    raise AuthConfigError(
        f"unsupported public key {type(key).__name__}: use Ed25519, EC P-256 or RSA"
    )


# -- the FastAPI side -----------------------------------------------------------------------

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    scheme_name="bearer",
    description=(
        "An OAuth2 access token in the JWT profile (RFC 9068, `typ` at+jwt) from the identity "
        "provider the service trusts: `scope` (space-separated) and `tenants` (tenant ids, "
        '["*"] for operators) claims.'
    ),
)


def _unauthorized(reason: str | None) -> HTTPException:
    challenge = "Bearer" if reason is None else 'Bearer error="invalid_token"'
    return HTTPException(
        401,
        "an access token is required (Authorization: Bearer …)"
        if reason is None
        else f"invalid access token: {reason}",
        headers={"WWW-Authenticate": challenge},
    )


def _forbidden(reason: str, scope: str) -> HTTPException:
    return HTTPException(
        403,
        reason,
        headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
    )


def request_tenant(request: Request) -> str | None:
    """The tenant a request acts for: the path's `{tenant_id}`, else `?tenant_id=`; `None`
    for a request over every tenant."""
    tenant = request.path_params.get("tenant_id") or request.query_params.get("tenant_id")
    return str(tenant) if tenant else None


async def authenticate(
    request: Request,
    security_scopes: SecurityScopes,
    credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
) -> Principal:
    """The caller, once its token is verified and allows the route's scope for the tenant."""
    verifier: TokenVerifier | None = request.app.state.token_verifier
    if verifier is None:
        principal = ANONYMOUS_OPERATOR
    else:
        if credentials is None or not credentials.credentials:
            raise _unauthorized(None)
        try:
            principal = await verifier.averify(credentials.credentials)
        except InvalidToken as exc:
            raise _unauthorized(str(exc)) from None
    for scope in security_scopes.scopes:
        if scope not in principal.scopes:
            raise _forbidden(f'the token lacks the scope "{scope}"', scope)
    tenant = request_tenant(request)
    if not principal.may_act_for(tenant):
        raise _forbidden(
            f"the token is not valid for tenant {tenant}"
            if tenant is not None
            else 'this request spans every tenant: it needs a token for tenants ["*"] '
            "(or give ?tenant_id=)",
            " ".join(security_scopes.scopes),
        )
    request.state.principal = principal
    return principal


def require(scope: Scope) -> Depends:
    """The dependency of a route open to tokens carrying `scope` (for the request's tenant)."""
    dependency: Depends = Security(authenticate, scopes=[scope.value])
    return dependency


def _public_route() -> None:
    """Marks a route declared open (`public=`): it checks nothing."""


PUBLIC = Depends(_public_route)


def _declared_scope(dependant: Dependant) -> str | None:
    """The route's declared access: its scope, "public", or `None` when it declares none."""
    for dependency in dependant.dependencies:
        if dependency.call is _public_route:
            return "public"
        if dependency.call is authenticate:
            scopes = dependency.own_oauth_scopes
            if scopes:
                return " ".join(scopes)
    return None


class Problem(BaseModel):
    """An error answer: `detail` says why (for malformed input, a list of field errors)."""

    detail: str | list[dict[str, Any]]


# What any secured route may answer besides its success (documented in its OpenAPI).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body is not JSON"},
    401: {"model": Problem, "description": "no access token, or an invalid one"},
    403: {"model": Problem, "description": "the token lacks the scope or the tenant"},
    404: {"model": Problem, "description": "no such record"},
    413: {"model": Problem, "description": "request body too large"},
    422: {"model": Problem, "description": "malformed input, or a refused command"},
}


class SecureRouter(APIRouter):
    """An APIRouter whose routes must say who may call them: `scope=` or `public="why"`."""

    public_reasons: dict[str, str]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.public_reasons = {}

    def _access(
        self,
        path: str,
        scope: Scope | None,
        public: str | None,
        kwargs: dict[str, Any],
        max_body_bytes: int | None = None,
    ) -> dict[str, Any]:
        if (scope is None) == (public is None):
            raise TypeError(f"route {path}: give exactly one of scope= or public=")
        if max_body_bytes is not None:
            # Documented in the OpenAPI and read back by the service's body cap (413).
            extra = kwargs.get("openapi_extra") or {}
            kwargs = {**kwargs, "openapi_extra": {**extra, MAX_BODY_EXTENSION: max_body_bytes}}
        access = require(scope) if scope is not None else PUBLIC
        if public is not None:
            self.public_reasons[self.prefix + path] = public
            return {**kwargs, "dependencies": [*kwargs.get("dependencies", ()), access]}
        return {
            **kwargs,
            "dependencies": [*kwargs.get("dependencies", ()), access],
            "responses": {**ERROR_RESPONSES, **kwargs.get("responses", {})},
        }

    def get(
        self, path: str, *, scope: Scope | None = None, public: str | None = None, **kwargs: Any
    ) -> Callable[[Any], Any]:
        return super().get(path, **self._access(path, scope, public, kwargs))

    def post(
        self,
        path: str,
        *,
        scope: Scope | None = None,
        public: str | None = None,
        max_body_bytes: int | None = None,
        **kwargs: Any,
    ) -> Callable[[Any], Any]:
        """`max_body_bytes`: this route's body cap instead of the service's global one."""
        return super().post(path, **self._access(path, scope, public, kwargs, max_body_bytes))

    def put(
        self,
        path: str,
        *,
        scope: Scope | None = None,
        public: str | None = None,
        max_body_bytes: int | None = None,
        **kwargs: Any,
    ) -> Callable[[Any], Any]:
        """`max_body_bytes`: this route's body cap instead of the service's global one."""
        return super().put(path, **self._access(path, scope, public, kwargs, max_body_bytes))

    def patch(
        self,
        path: str,
        *,
        scope: Scope | None = None,
        public: str | None = None,
        max_body_bytes: int | None = None,
        **kwargs: Any,
    ) -> Callable[[Any], Any]:
        """`max_body_bytes`: this route's body cap instead of the service's global one."""
        return super().patch(path, **self._access(path, scope, public, kwargs, max_body_bytes))

    def delete(
        self, path: str, *, scope: Scope | None = None, public: str | None = None, **kwargs: Any
    ) -> Callable[[Any], Any]:
        return super().delete(path, **self._access(path, scope, public, kwargs))


MAX_BODY_EXTENSION = "x-max-body-bytes"


@dataclass(frozen=True)
class BodyLimit:
    """A route's own body cap: its full path (as a regex) and methods, and the bytes allowed."""

    path: re.Pattern[str]
    methods: frozenset[str]
    max_bytes: int

    def applies(self, method: str, path: str) -> bool:
        return method in self.methods and self.path.match(path) is not None


def route_body_limits(app: FastAPI) -> list[BodyLimit]:
    """The routes that declared their own body cap (`max_body_bytes=`), with it."""
    limits = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        extra = (route.openapi_extra if isinstance(route, APIRoute) else None) or {}
        if MAX_BODY_EXTENSION in extra:
            limits.append(
                BodyLimit(
                    compile_path(str(context.path))[0],
                    frozenset(context.methods or ()),
                    int(extra[MAX_BODY_EXTENSION]),
                )
            )
    return limits


def route_access(app: FastAPI) -> dict[tuple[str, str], str | None]:
    """(method, path) → the scope a route needs, "public", or `None` (declares nothing)."""
    access: dict[tuple[str, str], str | None] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            dependant = getattr(context, "dependant", None) or route.dependant
            for method in sorted(context.methods or ()):
                access[(method, str(context.path))] = _declared_scope(dependant)
    return access


def check_routes_declare_access(app: FastAPI) -> None:
    """Refuse an app with a route that declares no access (see the module's docstring)."""
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    undeclared = [f"{method} {path}" for (method, path), s in route_access(app).items() if not s]
    undeclared += [
        f"{context.path} ({type(context.original_route).__name__})"
        for context in iter_route_contexts(app.routes)
        if not isinstance(context.original_route, APIRoute)
        and not (isinstance(context.original_route, Route) and context.path in docs)
    ]
    if undeclared:
        raise RuntimeError(
            "routes without a declared access (make them with stockpit_runtime.auth."
            "SecureRouter and give scope= or public=): " + ", ".join(sorted(undeclared))
        )


# -- the local identity provider ------------------------------------------------------------


@dataclass(frozen=True)
class LocalAuthority:
    """An Ed25519 key pair in `directory` (`private.pem`, `public.pem`) that mints tokens.

    For the demo, the tests and `stockpit dev-token`: a deployment uses its identity provider.
    """

    directory: Path
    issuer: str = LOCAL_ISSUER
    audience: str = LOCAL_AUDIENCE

    @property
    def private_key_file(self) -> Path:
        return self.directory / "private.pem"

    @property
    def public_key_file(self) -> Path:
        return self.directory / "public.pem"

    def exists(self) -> bool:
        return self.private_key_file.is_file() and self.public_key_file.is_file()

    @classmethod
    def create(cls, directory: Path, **kwargs: Any) -> LocalAuthority:
        """The key pair in `directory`, made there first if it has none."""
        authority = cls(directory, **kwargs)
        if authority.exists():
            return authority
        directory.mkdir(parents=True, exist_ok=True)
        key = ed25519.Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        authority.private_key_file.touch(mode=0o600)
        authority.private_key_file.write_bytes(private)
        authority.public_key_file.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return authority

    def service_env(self) -> dict[str, str]:
        """The settings that make a service trust this authority's tokens."""
        return {
            "STOCKPIT_AUTH_PUBLIC_KEY_FILE": str(self.public_key_file),
            "STOCKPIT_AUTH_ISSUER": self.issuer,
            "STOCKPIT_AUTH_AUDIENCE": self.audience,
        }

    def token(
        self,
        *,
        tenants: Iterable[str] = (ALL_TENANTS,),
        scopes: Iterable[str] = ALL_SCOPES,
        subject: str = "local-operator",
        lifetime: dt.timedelta = dt.timedelta(hours=1),
        **claims: Any,
    ) -> str:
        """A signed access token (claims given here override the defaults, e.g. `exp`)."""
        if not self.private_key_file.is_file():
            raise FileNotFoundError(f"no local private key at {self.private_key_file}")
        key = serialization.load_pem_private_key(self.private_key_file.read_bytes(), None)
        now = dt.datetime.now(dt.UTC)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "client_id": subject,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(str(scope) for scope in scopes),
            "tenants": list(tenants),
            **claims,
        }
        return jwt.encode(payload, key, algorithm="EdDSA", headers={"typ": "at+jwt"})  # type: ignore[arg-type]

    def headers(self, **kwargs: Any) -> dict[str, str]:
        """`Authorization` header for a token of `token(**kwargs)`."""
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}


def scopes_of(values: Sequence[str]) -> list[Scope]:
    """Scopes named on a command line (refusing unknown ones with the list of known)."""
    known = {scope.value: scope for scope in Scope}
    unknown = [value for value in values if value not in known]
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}: known are {', '.join(known)}")
    return [known[value] for value in values]
