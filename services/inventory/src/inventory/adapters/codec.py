"""Domain dataclasses to JSON and back, exactly: aggregates are stored as JSONB documents.

Decimals, UUIDs, dates and times are written as strings so they round-trip without loss
(a JSON number would go through a float). Timedeltas become [days, seconds, microseconds],
enums their value. Dicts become lists of [key, value] pairs because their keys may be UUIDs or
`StockKey`s. Decoding follows the dataclasses' type hints.

Aggregates are encoded and decoded on every event the inventory applies, so each dataclass
gets an encoder and a decoder compiled once from its fields and type hints: one generated
function per class that reads every field and converts it inline, without walking an isinstance
chain per value. What a field holds decides its encoding: the compiled code checks the value's
exact class against the declared type and hands anything else (a subclass, an int in a Decimal
field, a value declared `Any`) to the generic `encode`, which dispatches on the value's class.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import types
import typing
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from itertools import count
from typing import Any, TypeVar
from uuid import UUID

from stockpit_runtime.uuids import FastUUID

T = TypeVar("T")

Json = Any
Encoder = Callable[[Any], Json]
Decoder = Callable[[Json], Any]


def encode(value: object) -> Json:
    encoder = _ENCODERS.get(value.__class__)
    if encoder is None:
        encoder = _encoder_for_class(value.__class__)
    return encoder(value)


def dumps(value: object) -> str:
    """Exactly `json.dumps(encode(value))`, the text stored in a JSONB column: encoded values
    are fresh trees, so the check for reference cycles is skipped."""
    return _JSON_ENCODER.encode(encode(value))


def decode(tp: type[T], data: Json) -> T:
    decoder = _DECODERS.get(tp)
    if decoder is None:
        decoder = _decoder(tp)
    result: T = decoder(data)
    return result


_JSON_ENCODER = json.JSONEncoder(check_circular=False)

# Generated functions live in one namespace (their globals): a class's compiled function is
# looked up by name when called, so classes that refer to each other compile without recursion.
_NAMESPACE: dict[str, Any] = {
    "Decimal": Decimal,
    "UUID": UUID,
    "FastUUID": FastUUID,
    "datetime": datetime,
    "date": date,
    "timedelta": timedelta,
    "encode": encode,
}
# Compiling happens once per type; a class's name is reserved while its fields compile, which
# another thread must not see.
_COMPILING = threading.RLock()
_NAMES: dict[tuple[str, object], str] = {}
_COUNTER = count()
_ENCODERS: dict[type, Encoder] = {}
_DECODERS: dict[object, Decoder] = {}


def _name_for(role: str, thing: object) -> str:
    """A namespace name for `thing` (a type, a function, a table), the same on every call."""
    key = (role, thing)
    name = _NAMES.get(key)
    if name is None:
        name = f"_{role}_{next(_COUNTER)}"
        _NAMES[key] = name
    return name


def _register(role: str, thing: object, key: object = None) -> str:
    """Puts `thing` in the namespace under a name for (`role`, `key` or else `thing`)."""
    name = _name_for(role, thing if key is None else key)
    _NAMESPACE[name] = thing
    return name


def _define(name: str, source: str) -> Callable[[Any], Any]:
    exec(source, _NAMESPACE)  # noqa: S102 - source generated here from dataclass fields
    function: Callable[[Any], Any] = _NAMESPACE[name]
    return function


def _optional_inner(tp: Any) -> Any | None:
    """X for `X | None` (or `Optional[X]`); None for any other type."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    args = typing.get_args(tp)
    inner = [arg for arg in args if arg is not type(None)]
    return inner[0] if len(inner) == 1 and len(args) == 2 else None


def _homogeneous_item(tp: Any) -> Any | None:
    """X for `list[X]` and `tuple[X, ...]`; None for any other type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and len(args) == 1:
        return args[0]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return None


# -- encoding ------------------------------------------------------------------------------


def _identity(value: Json) -> Json:
    return value


def _enum_value(value: Enum) -> Json:
    return value.value


def _isoformat(value: date) -> str:
    return value.isoformat()


def _timedelta_parts(value: timedelta) -> list[int]:
    return [value.days, value.seconds, value.microseconds]


def _encode_pairs(value: dict[Any, Any]) -> list[list[Json]]:
    return [[encode(key), encode(item)] for key, item in value.items()]


def _encode_items(value: list[Any] | tuple[Any, ...]) -> list[Json]:
    return [encode(item) for item in value]


def _encoder_for_class(cls: type) -> Encoder:
    """The encoding of any value of class `cls`, in the order the rules have always applied
    (an IntEnum is an int, a StrEnum is written as its value)."""
    with _COMPILING:
        encoder = _ENCODERS.get(cls) or _class_encoding(cls)
        _ENCODERS[cls] = encoder
    return encoder


def _class_encoding(cls: type) -> Encoder:
    encoder: Encoder
    if cls is type(None) or issubclass(cls, bool | int):
        encoder = _identity
    elif issubclass(cls, Enum):
        encoder = _enum_value
    elif issubclass(cls, str):
        encoder = _identity
    elif issubclass(cls, Decimal | UUID):
        encoder = str
    elif issubclass(cls, datetime | date):
        encoder = _isoformat
    elif issubclass(cls, timedelta):
        encoder = _timedelta_parts
    elif dataclasses.is_dataclass(cls):
        encoder = _dataclass_encoder(cls)
    elif issubclass(cls, dict):
        encoder = _encode_pairs
    elif issubclass(cls, list | tuple):
        encoder = _encode_items
    else:
        raise TypeError(f"cannot encode {cls.__name__}")
    return encoder


def _dataclass_encoder(cls: type) -> Encoder:
    name = _name_for("encode", cls)
    if name in _NAMESPACE:
        encoder: Encoder = _NAMESPACE[name]
        return encoder
    try:
        hints = typing.get_type_hints(cls)
    except NameError:
        hints = {}  # unresolvable annotations: every field takes the generic path
    _NAMESPACE[name] = None  # reserved: a field of this very class refers to it by name
    fields = dataclasses.fields(cls)
    reads = "".join(f"    v{i} = obj.{field.name}\n" for i, field in enumerate(fields))
    entries = ", ".join(
        f"{field.name!r}: {_encode_expr(hints.get(field.name, Any), f'v{i}', 0)}"
        for i, field in enumerate(fields)
    )
    return _define(name, f"def {name}(obj):\n{reads}    return {{{entries}}}\n")


def _encode_expr(tp: Any, var: str, depth: int) -> str:
    """A Python expression encoding local `var`, declared as `tp`, exactly as `encode` does."""
    fallback = f"encode({var})"
    inner = _optional_inner(tp)
    if inner is not None:
        return f"(None if {var} is None else {_encode_expr(inner, var, depth)})"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict and len(args) == 2:
        key, item = f"k{depth}", f"x{depth}"
        pair = (
            f"[{_encode_expr(args[0], key, depth + 1)}, {_encode_expr(args[1], item, depth + 1)}]"
        )
        pairs = f"[{pair} for {key}, {item} in {var}.items()]"
        return f"({pairs} if {var}.__class__ is dict else {fallback})"
    item_type = _homogeneous_item(tp)
    if item_type is not None:
        item = f"x{depth}"
        items = f"[{_encode_expr(item_type, item, depth + 1)} for {item} in {var}]"
        is_sequence = f"{var}.__class__ is list or {var}.__class__ is tuple"
        return f"({items} if {is_sequence} else {fallback})"
    if not isinstance(tp, type) or tp is object:
        return fallback
    converted: str
    if tp in (str, int, bool):
        converted = var
    elif issubclass(tp, Enum) and not issubclass(tp, int):
        converted = f"{var}.value"
    elif tp is UUID:
        # UUIDs read by this codec are asyncpg's (see `_decode_expr`).
        return (
            f"(str({var}) if {var}.__class__ is FastUUID or {var}.__class__ is UUID "
            f"else {fallback})"
        )
    elif tp is Decimal:
        converted = f"str({var})"
    elif tp is datetime or tp is date:
        converted = f"{var}.isoformat()"
    elif tp is timedelta:
        converted = f"[{var}.days, {var}.seconds, {var}.microseconds]"
    elif dataclasses.is_dataclass(tp):
        _dataclass_encoder(tp)
        converted = f"{_name_for('encode', tp)}({var})"
    else:
        return fallback
    return f"({converted} if {var}.__class__ is {_register('type', tp)} else {fallback})"


# -- decoding ------------------------------------------------------------------------------


def _decode_timedelta(data: Json) -> timedelta:
    days, seconds, microseconds = data
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _rejecting(tp: Any) -> Decoder:
    def reject(data: Json) -> Any:
        raise TypeError(f"cannot decode {tp!r}")

    return reject


def _decoder(tp: Any) -> Decoder:
    """The compiled decoder of `tp` (cached)."""
    with _COMPILING:
        decoder = _DECODERS.get(tp)
        if decoder is None:
            if isinstance(tp, type) and dataclasses.is_dataclass(tp):
                decoder = _dataclass_decoder(tp)
            else:
                decoder = _field_decoder(tp)
            _DECODERS[tp] = decoder
    return decoder


def _field_decoder(tp: Any) -> Decoder:
    """A decoder of `tp` that calls dataclass decoders by name (they may still be compiling)."""
    name = _name_for("decode_field", tp)
    if name in _NAMESPACE:
        decoder: Decoder = _NAMESPACE[name]
        return decoder
    return _define(name, f"def {name}(data):\n    return {_decode_expr(tp, 'data', 0)}\n")


def _dataclass_decoder(cls: type) -> Decoder:
    name = _name_for("decode", cls)
    if name in _NAMESPACE:
        decoder: Decoder = _NAMESPACE[name]
        return decoder
    hints = typing.get_type_hints(cls)
    _NAMESPACE[name] = None  # reserved: a field of this very class refers to it by name
    fields = [field.name for field in dataclasses.fields(cls)]
    reads = "".join(f"        v{i} = data[{field!r}]\n" for i, field in enumerate(fields))
    arguments = ", ".join(
        f"{field}={_decode_expr(hints[field], f'v{i}', 0)}" for i, field in enumerate(fields)
    )
    # Documents written before a field existed lack it: the dataclass default applies.
    by_name = _register("fields", {key: _field_decoder(hint) for key, hint in hints.items()}, cls)
    cls_name = _register("type", cls)
    source = (
        f"def {name}(data):\n"
        f"    if len(data) == {len(fields)}:\n"
        f"{reads}"
        f"        return {cls_name}({arguments})\n"
        f"    return {cls_name}(**{{key: {by_name}[key](value) for key, value in data.items()}})\n"
    )
    return _define(name, source)


def _decode_expr(tp: Any, var: str, depth: int) -> str:
    """A Python expression decoding local `var` as `tp`: None stays None where the
    declared type is a plain value or a dataclass, Any and str/int/bool are taken as they are."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = _optional_inner(tp)
        if inner is None:
            return f"(None if {var} is None else {_register('reject', _rejecting(tp))}({var}))"
        decoded = _decode_expr(inner, var, depth)
        return decoded if decoded == var else f"(None if {var} is None else {decoded})"
    if origin is dict and len(args) == 2:
        key, item = f"k{depth}", f"x{depth}"
        decoded_key = _decode_expr(args[0], key, depth + 1)
        decoded_item = _decode_expr(args[1], item, depth + 1)
        return f"{{{decoded_key}: {decoded_item} for {key}, {item} in {var}}}"
    if origin is list and len(args) == 1:
        item = f"x{depth}"
        return f"[{_decode_expr(args[0], item, depth + 1)} for {item} in {var}]"
    if origin is tuple and args:
        item = f"x{depth}"
        return f"tuple([{_decode_expr(args[0], item, depth + 1)} for {item} in {var}])"
    if tp is Any or tp in (str, int, bool):
        return var
    converted: str
    if not isinstance(tp, type):
        converted = f"{_register('reject', _rejecting(tp))}({var})"
    elif issubclass(tp, Enum):
        converted = f"{_register('type', tp)}({var})"
    elif tp is Decimal:
        converted = f"Decimal({var})"
    elif tp is UUID:
        # A `uuid.UUID` subclass whose parsing, text, hash and comparisons are C calls: the
        # ids of products, locations and orders read here are hashed and written again and
        # again while a batch is applied.
        converted = f"FastUUID({var})"
    elif tp is datetime:
        converted = f"datetime.fromisoformat({var})"
    elif tp is date:
        converted = f"date.fromisoformat({var})"
    elif tp is timedelta:
        converted = f"{_register('function', _decode_timedelta)}({var})"
    elif dataclasses.is_dataclass(tp):
        _dataclass_decoder(tp)
        converted = f"{_name_for('decode', tp)}({var})"
    else:
        converted = f"{_register('reject', _rejecting(tp))}({var})"
    return f"(None if {var} is None else {converted})"
