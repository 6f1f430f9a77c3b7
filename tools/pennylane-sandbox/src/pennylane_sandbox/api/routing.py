"""Starlette routes for the registered operations: scope check, context, error bodies."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import ApiError, error_status
from ..serializers import Serializer
from ..spec import API_PREFIX
from ..state import Sandbox, scope_allows
from ..store import Company
from .common import COMPANY_SCOPE_KEY, OPERATIONS, Ctx, Operation, ok

_PARAMETER = re.compile(r"\{(\w+)\}")


def _endpoint(sandbox: Sandbox, op: Operation) -> Callable[[Request], Awaitable[Response]]:
    write = op.method != "GET"

    async def endpoint(request: Request) -> Response:
        company: Company = request.scope[COMPANY_SCOPE_KEY]
        try:
            if op.scope is not None and not scope_allows(company.scopes, op.scope, write=write):
                needed = f"{op.scope}:all" if write else f"{op.scope}:readonly"
                raise error_status(403, f'Access to this resource requires scope "{needed}".')
            api = str(request.base_url).rstrip("/") + API_PREFIX
            ctx = Ctx(request, sandbox, company, Serializer(api), op.path)
            return await op.handler(ctx)
        except ApiError as error:
            return ok(error.body, error.status)

    return endpoint


def api_routes(sandbox: Sandbox) -> list[Route]:
    """Starlette routes for every served operation; literal paths come before `{id}` ones."""
    ordered = sorted(OPERATIONS, key=lambda op: "{" in op.path.split("/")[-1])
    return [
        Route(
            API_PREFIX + _PARAMETER.sub(r"{\1:int}", op.path),
            _endpoint(sandbox, op),
            methods=[op.method],
        )
        for op in ordered
    ]


def served_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation the sandbox serves, paths as in openapi.json."""
    return [(op.method, op.path) for op in OPERATIONS]


__all__ = ["api_routes", "served_operations"]
