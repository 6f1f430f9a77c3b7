"""Cursor pagination of list endpoints, the same in every service.

A list route takes `limit` (1…`MAX_LIMIT`, default `DEFAULT_LIMIT`) and `cursor`, answers at
most `limit` items and, when more follow, a `Link: <…?cursor=…>; rel="next"` header (RFC 8288;
httpx reads it as `response.links["next"]`). A cursor is opaque to clients: the sort key of the
last item sent, so a page never repeats or skips a row that existed when the walk started. A
cursor that was not made here is a 422.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import HTTPException, Query, Request, Response

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"items per page (at most {MAX_LIMIT})")
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=512,
        pattern=r"^[A-Za-z0-9_-]+$",
        description='the `cursor` of the previous answer\'s `Link: <…>; rel="next"` header',
    ),
]
T = TypeVar("T")


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps(list(key), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    """The key a cursor holds (`arity` values), or `None` for the first page."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, list) or len(key) != arity:
        raise HTTPException(422, "invalid cursor: pass the one a previous page gave")
    if not all(isinstance(value, str | int) and not isinstance(value, bool) for value in key):
        raise HTTPException(422, "invalid cursor: pass the one a previous page gave")
    return key


def link_next(request: Request, response: Response, next_key: Sequence[Any] | None) -> None:
    """Announce the next page (when there is one) in the `Link` header."""
    if next_key is None:
        return
    url = request.url.include_query_params(cursor=encode_cursor(next_key))
    response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'


def page_of(
    items: Sequence[T],
    key: Callable[[T], tuple[Any, ...]],
    *,
    limit: int,
    cursor: str | None,
    arity: int,
) -> tuple[list[T], tuple[Any, ...] | None]:
    """One page of `items` in `key` order (for lists read whole), and the next page's key."""
    after = decode_cursor(cursor, arity)
    ordered = sorted(items, key=key)
    if after is not None:
        start = tuple(after)
        ordered = [item for item in ordered if _after(key(item), start)]
    chosen = ordered[:limit]
    more = len(ordered) > limit
    return chosen, (key(chosen[-1]) if more and chosen else None)


def _after(key: tuple[Any, ...], start: tuple[Any, ...]) -> bool:
    try:
        return key > start
    except TypeError:  # a cursor of another list: its values do not compare
        raise HTTPException(422, "invalid cursor: pass the one a previous page gave") from None
