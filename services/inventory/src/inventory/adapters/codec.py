"""Domain dataclasses to JSON and back, exactly: aggregates are stored as JSONB documents.

Decimals, UUIDs, dates and times are written as strings so they round-trip without loss
(a JSON number would go through a float). Dicts become lists of [key, value] pairs because
their keys may be UUIDs or `StockKey`s. Decoding follows the dataclasses' type hints.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

T = TypeVar("T")

Json = Any


def encode(value: object) -> Json:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return [value.days, value.seconds, value.microseconds]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return [[encode(k), encode(v)] for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    raise TypeError(f"cannot encode {type(value).__name__}")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(tp: type[T], data: Json) -> T:
    result: T = _decode(tp, data)
    return result


def _decode(tp: Any, data: Json) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        if data is None:
            return None
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return _decode(inner, data)
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        return {_decode(key_type, k): _decode(value_type, v) for k, v in data}
    if origin is list:
        (item_type,) = typing.get_args(tp)
        return [_decode(item_type, item) for item in data]
    if origin is tuple:
        item_type = typing.get_args(tp)[0]
        return tuple(_decode(item_type, item) for item in data)
    if tp is Any or tp in (str, int, bool) or data is None:
        return data
    if isinstance(tp, type):
        if issubclass(tp, Enum):
            return tp(data)
        if tp is Decimal:
            return Decimal(data)
        if tp is UUID:
            return UUID(data)
        if tp is datetime:
            return datetime.fromisoformat(data)
        if tp is date:
            return date.fromisoformat(data)
        if tp is timedelta:
            days, seconds, microseconds = data
            return timedelta(days=days, seconds=seconds, microseconds=microseconds)
        if dataclasses.is_dataclass(tp):
            hints = _hints(tp)
            return tp(**{name: _decode(hints[name], value) for name, value in data.items()})
    raise TypeError(f"cannot decode {tp!r}")
