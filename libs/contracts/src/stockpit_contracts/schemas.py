"""JSON Schema export of every payload, and the compatibility rule published schemas obey.

A consumer may lag its producer by a release, so a published schema version may only change in
ways an old consumer reading new messages (and a new consumer reading old ones) survives:
- no property removed, no property's type changed;
- no property newly required (an old producer does not send it);
- no enum value removed... and an enum value added is breaking too, since old consumers reject it.
Anything else needs a new schema version (a new `SCHEMA_VERSION`) and a new published file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stockpit_contracts.events import envelope_type
from stockpit_contracts.payloads.base import PAYLOAD_TYPES

PUBLISHED_DIR = Path(__file__).resolve().parents[2] / "schemas"


def current_schemas() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema of the full envelope for each registered event type."""
    return {
        f"{event_type}.v{payload_type.SCHEMA_VERSION}.json": envelope_type(
            payload_type
        ).model_json_schema(mode="serialization")
        for event_type, payload_type in sorted(PAYLOAD_TYPES.items())
    }


def export(directory: Path = PUBLISHED_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in current_schemas().items():
        path = directory / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why `new` cannot replace `old` under the same schema version (empty when it can)."""
    problems: list[str] = []
    _compare(old, new, old.get("$defs", {}), new.get("$defs", {}), "$", problems)
    return problems


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(defs[ref.removeprefix("#/$defs/")], defs)
    return schema


def _kind(schema: dict[str, Any]) -> Any:
    if "anyOf" in schema:
        return sorted(json.dumps(_kind(s), sort_keys=True) for s in schema["anyOf"])
    return schema.get("type"), schema.get("format"), schema.get("const")


def _compare(
    old: dict[str, Any],
    new: dict[str, Any],
    old_defs: dict[str, Any],
    new_defs: dict[str, Any],
    where: str,
    problems: list[str],
) -> None:
    old, new = _resolve(old, old_defs), _resolve(new, new_defs)
    if "anyOf" in old or "anyOf" in new:
        old_options = [_resolve(s, old_defs) for s in old.get("anyOf", [old])]
        new_options = [_resolve(s, new_defs) for s in new.get("anyOf", [new])]
        if len(old_options) != len(new_options):
            problems.append(f"{where}: type options changed")
            return
        for index, (o, n) in enumerate(zip(old_options, new_options, strict=True)):
            _compare(o, n, old_defs, new_defs, f"{where}|{index}", problems)
        return
    if _kind(old) != _kind(new):
        problems.append(f"{where}: type changed from {_kind(old)} to {_kind(new)}")
        return
    if sorted(map(str, old.get("enum", []))) != sorted(map(str, new.get("enum", []))):
        problems.append(f"{where}: allowed values changed")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            problems.append(f"{where}.{name}: property removed")
        else:
            _compare(
                old_props[name], new_props[name], old_defs, new_defs, f"{where}.{name}", problems
            )
    for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        problems.append(f"{where}.{name}: newly required")
    if "items" in old and "items" in new:
        _compare(old["items"], new["items"], old_defs, new_defs, f"{where}[]", problems)


def main() -> None:
    for path in export():
        print(path)


if __name__ == "__main__":
    main()
