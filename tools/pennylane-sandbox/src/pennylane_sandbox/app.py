"""The sandbox ASGI app: token check, rate limit and faults in front of the routed handlers."""

from __future__ import annotations

import asyncio
import email.utils
import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from .admin import admin_routes
from .api import COMPANY_SCOPE_KEY, api_routes
from .config import SandboxConfig
from .faults import FaultInjector, drop_connection
from .ratelimit import RateLimiter, RequestLog, RequestLogEntry
from .spec import API_PREFIX
from .state import Sandbox

# Pennylane sends this on every response; it is empty on the latest API version.
VERSION_HEADER = (b"api-version-expires-at", b"")


async def _json_http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        # Pennylane routes by method and path together: a wrong method is an unknown route.
        status = 404
    message = (
        "Not Found" if status == 404 else (exc.detail if isinstance(exc, HTTPException) else "")
    )
    return JSONResponse({"error": message, "status": status}, status_code=status)


class SandboxApp:
    """ASGI app; `sandbox`, `limiter`, `request_log` and `faults` are open for in-process tests."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.sandbox = Sandbox(config)
        self.limiter = RateLimiter(config.rate_limit, config.rate_window_seconds)
        self.request_log = RequestLog(config.request_log_capacity)
        # Tokens revoked at run time (`/_sandbox/{token}/revoke`): their requests are logged.
        self.revoked_tokens: set[str] = set()
        self.faults = FaultInjector(config.faults, config.seed)
        self.router = Starlette(
            routes=[*api_routes(self.sandbox), *admin_routes(self)],
            exception_handlers={404: _json_http_error, 405: _json_http_error},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.router(scope, receive, send)
            return
        token = _bearer_token(scope)
        company = self.sandbox.companies.get(token) if token else None
        if company is None:
            message = "The access token is missing" if not token else "The access token is invalid"
            response = JSONResponse({"error": message, "status": 401}, status_code=401)
            if token in self.revoked_tokens:
                entry = RequestLogEntry(
                    time.time(), time.monotonic(), scope["method"], scope["path"], 401, "revoked"
                )
                self.request_log.add(token, entry)
            await response(scope, receive, send)
            return
        arrived_wall, arrived_monotonic = time.time(), time.monotonic()
        decision = self.limiter.admit(company.token, arrived_monotonic, arrived_wall)

        def log(status: int, outcome: str) -> None:
            self.request_log.add(
                company.token,
                RequestLogEntry(
                    arrived_wall, arrived_monotonic, scope["method"], scope["path"], status, outcome
                ),
            )

        if not decision.allowed:
            log(429, "rate_limited")
            await _too_many_requests(decision.retry_after, decision.headers())(scope, receive, send)
            return
        failure, delay = self.faults.draw(company.token)
        if delay:
            await asyncio.sleep(delay)
        if failure == "dropped":
            log(0, "dropped")
            await drop_connection(send)
            return
        if failure == "fault_429":
            log(429, failure)
            headers = [
                (b"ratelimit-limit", str(decision.limit).encode()),
                (b"ratelimit-remaining", b"0"),
                (b"ratelimit-reset", str(decision.reset_at).encode()),
                (b"retry-after", b"1"),
            ]
            await _too_many_requests(1, headers)(scope, receive, send)
            return
        if failure in ("fault_500", "fault_503"):
            status = 500 if failure == "fault_500" else 503
            log(status, failure)
            text = "Internal Server Error" if status == 500 else "Service Unavailable"
            response = JSONResponse({"error": text, "status": status}, status_code=status)
            await response(scope, receive, _with_headers(send, decision.headers(), None))
            return
        statuses: list[int] = []
        scope[COMPANY_SCOPE_KEY] = company
        headers = [*decision.headers(), self._date_header()]
        await self.router(scope, receive, _with_headers(send, headers, statuses))
        log(statuses[0] if statuses else 0, "ok")

    def _date_header(self) -> tuple[bytes, bytes]:
        """Pennylane's `Date`, on the sandbox's clock (which tests may move forward): what a
        client derives from it (a changelog start) then agrees with the changelog's
        `processed_at`. Served with uvicorn's own `Date` off (see `serving`)."""
        return b"date", email.utils.format_datetime(self.sandbox.now(), usegmt=True).encode()


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return str(credentials.strip())
    return None


def _too_many_requests(retry_after: int, headers: list[tuple[bytes, bytes]]) -> Response:
    response = PlainTextResponse(
        f"Rate limit exceeded. Please retry in {retry_after} seconds.", status_code=429
    )
    response.raw_headers.extend([*headers, VERSION_HEADER])
    return response


def _with_headers(
    send: Send, headers: list[tuple[bytes, bytes]], statuses: list[int] | None
) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {
                **message,
                "headers": [*message.get("headers", []), *headers, VERSION_HEADER],
            }
            if statuses is not None:
                statuses.append(message["status"])
        await send(message)

    return send_with_headers


def create_app(config: SandboxConfig) -> SandboxApp:
    """The sandbox as an ASGI app (serve it with uvicorn, or call it in-process)."""
    return SandboxApp(config)
