"""The token's identity: `GET /me`."""

from __future__ import annotations

from starlette.responses import Response

from .common import Ctx, ok, operation


@operation("GET", "/me", None)
async def get_me(ctx: Ctx) -> Response:
    return ok(ctx.ser.me(ctx.company, ctx.sandbox.granted_scopes(ctx.company)))
