"""Pennylane's OpenAPI 3.0 document turned into JSON-Schema validators.

The sandbox validates request bodies the way Pennylane does (its 400 codes such as
`NotExistRequiredKey` come from an OpenAPI request validator), and the tests validate every
response against the same document. `openapi.json` beside this file is an unchanged copy of
/work/shared/pennylane/openapi.json (Pennylane's own spec, snapshot of 2026-04-20).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

API_PREFIX = "/api/external/v2"
_RESOURCE_URI = "urn:pennylane:openapi"


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return "T" in value and parsed.tzinfo is not None


FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checks("date")(_is_date)
FORMAT_CHECKER.checks("date-time")(_is_date_time)


def _nullable_to_json_schema(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 `nullable: true` into JSON-Schema `null` types, recursively."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", False) is True:
        if isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
            if "enum" in converted and None not in converted["enum"]:
                converted["enum"] = [*converted["enum"], None]
        else:
            return {"anyOf": [converted, {"type": "null"}]}
    return converted


@cache
def openapi_document() -> dict[str, Any]:
    """The raw OpenAPI document, as Pennylane publishes it."""
    text = resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _registry() -> Registry[Any]:
    converted = _nullable_to_json_schema(copy.deepcopy(openapi_document()))
    resource = Resource.from_contents(converted, default_specification=DRAFT4)
    registry: Registry[Any] = Registry().with_resource(_RESOURCE_URI, resource)
    return registry


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@dataclass(frozen=True)
class SchemaIssue:
    """The first validation problem, in Pennylane's 400 vocabulary."""

    message: str
    field: str | None
    code: str


_CODES = {
    "required": "NotExistRequiredKey",
    "enum": "NotEnumInclude",
    "additionalProperties": "NotExistPropertyDefinition",
    "minimum": "LessThanMinimum",
    "maximum": "MoreThanMaximum",
    "minItems": "LessThanMinItems",
    "maxItems": "MoreThanMaxItems",
    "minLength": "LessThanMinLength",
    "maxLength": "MoreThanMaxLength",
    "anyOf": "NotAnyOf",
    "oneOf": "NotOneOf",
    "pattern": "InvalidPattern",
}


def _issue_from(error: ValidationError) -> SchemaIssue:
    path = "/".join(str(part) for part in error.absolute_path)
    if error.validator == "format":
        code = (
            "InvalidDateTimeFormat"
            if error.validator_value == "date-time"
            else ("InvalidDateFormat" if error.validator_value == "date" else "ValidateError")
        )
    elif error.validator == "type" and error.instance is None:
        code = "NotNullError"
    else:
        code = _CODES.get(str(error.validator), "ValidateError")
    return SchemaIssue(message=f"{path or '#'}: {error.message}", field=path or None, code=code)


class SchemaValidator:
    """Validates instances against one schema taken from the OpenAPI document."""

    def __init__(self, pointer: str) -> None:
        self._validator = Draft4Validator(
            {"$ref": f"{_RESOURCE_URI}#/{pointer}"},
            registry=_registry(),
            format_checker=FORMAT_CHECKER,
        )

    def first_issue(self, instance: object) -> SchemaIssue | None:
        error = best_match(self._validator.iter_errors(instance))
        if error is None:
            return None
        while error.context:
            # Report from the anyOf/oneOf branch that came closest to matching.
            branches: dict[object, list[ValidationError]] = {}
            for sub_error in error.context:
                branches.setdefault(sub_error.relative_schema_path[0], []).append(sub_error)
            closest = min(branches.values(), key=len)
            deeper = best_match(closest)
            if deeper is None:
                break
            error = deeper
        return _issue_from(error)

    def all_errors(self, instance: object) -> list[str]:
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '#'}: {error.message}"
            for error in self._validator.iter_errors(instance)
        ]


@cache
def request_validator(method: str, path_template: str, content_type: str) -> SchemaValidator:
    """Validator for an operation's request body (path relative to the API prefix)."""
    pointer = _pointer(
        "paths",
        API_PREFIX + path_template,
        method.lower(),
        "requestBody",
        "content",
        content_type,
        "schema",
    )
    return SchemaValidator(pointer)


def response_pointer(method: str, path_template: str, status: int) -> str | None:
    """JSON pointer to an operation's response schema, or None if the spec gives none."""
    operation = openapi_document()["paths"][API_PREFIX + path_template][method.lower()]
    response = operation["responses"].get(str(status))
    if response is None:
        return None
    if "$ref" in response:
        ref_parts = response["$ref"].lstrip("#/").split("/")
        response = openapi_document()
        for part in ref_parts:
            response = response[part]
        if "application/json" not in response.get("content", {}):
            return None
        return _pointer(*ref_parts, "content", "application/json", "schema")
    if "application/json" not in response.get("content", {}):
        return None
    return _pointer(
        "paths",
        API_PREFIX + path_template,
        method.lower(),
        "responses",
        str(status),
        "content",
        "application/json",
        "schema",
    )


@cache
def response_validator(method: str, path_template: str, status: int) -> SchemaValidator | None:
    pointer = response_pointer(method, path_template, status)
    return None if pointer is None else SchemaValidator(pointer)
