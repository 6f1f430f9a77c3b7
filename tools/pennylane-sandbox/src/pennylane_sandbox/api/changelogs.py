"""Changelogs: `/changelogs/{resource}`, one per tracked resource."""

from __future__ import annotations

import datetime as dt

from starlette.responses import Response

from .. import rules
from ..errors import bad_request, parameter_violation, unprocessable
from ..rules import parse_limit
from .common import Ctx, Handler, ok, operation


def _changelog_handler(resource: str) -> Handler:
    async def list_changes(ctx: Ctx) -> Response:
        limit = parse_limit(ctx.query, rules.CHANGELOG_MAX_LIMIT)
        start_date_text = ctx.query.get("start_date")
        cursor = ctx.query.get("cursor")
        if start_date_text and cursor:
            raise bad_request("start_date and cursor cannot be used together")
        changelog = ctx.company.changelogs[resource]
        oldest_retained = ctx.now - ctx.sandbox.config.changelog_retention
        start = changelog.index_from_time(oldest_retained)
        if start_date_text:
            try:
                start_date = dt.datetime.fromisoformat(start_date_text)
            except ValueError:
                raise parameter_violation(
                    "start_date", f"{start_date_text!r} is not a date-time", "InvalidDateTimeFormat"
                ) from None
            if start_date.tzinfo is None:
                start_date = start_date.replace(tzinfo=dt.UTC)
            if start_date < oldest_retained:
                raise unprocessable(
                    "start_date is older than the changelog retention period (4 weeks)"
                )
            start = changelog.index_from_time(start_date)
        elif cursor:
            payload = rules.decode_cursor(cursor)
            after = payload.get("after")
            if payload.get("changelog") != resource or not isinstance(after, int):
                raise bad_request("Invalid cursor")
            start = max(start, changelog.index_after_sequence(after))
        events = changelog.events[start : start + limit + 1]
        has_more = len(events) > limit
        events = events[:limit]
        next_cursor = (
            rules.encode_cursor({"changelog": resource, "after": events[-1].sequence})
            if has_more
            else None
        )
        return ok(
            {
                "items": [ctx.ser.change_event(event) for event in events],
                "has_more": has_more,
                "next_cursor": next_cursor,
            }
        )

    return list_changes


for _resource in (
    "customer_invoices",
    "products",
    "customers",
    "suppliers",
    "supplier_invoices",
    "quotes",
):
    operation("GET", f"/changelogs/{_resource}", _resource)(_changelog_handler(_resource))
