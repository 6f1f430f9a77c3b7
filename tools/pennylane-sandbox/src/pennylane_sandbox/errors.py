"""Errors raised by sandbox handlers, rendered in Pennylane's (loose) error shapes."""

from __future__ import annotations

from typing import Any

from .spec import SchemaIssue


class ApiError(Exception):
    """An HTTP error with the JSON body Pennylane would send."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def error_status(status: int, message: str) -> ApiError:
    """The `{"error", "status"}` shape the spec gives 401/403/404/409/422 and some 400s."""
    return ApiError(status, {"error": message, "status": status})


def bad_request(message: str) -> ApiError:
    return error_status(400, message)


def unprocessable(message: str) -> ApiError:
    return error_status(422, message)


def conflict(message: str) -> ApiError:
    return error_status(409, message)


def not_found(model: str, record_id: object) -> ApiError:
    return error_status(404, f"Couldn't find {model} with 'id'={record_id}")


def schema_violation(issue: SchemaIssue) -> ApiError:
    """A 400 from request validation: `{message, field?, code}` like Pennylane's validator."""
    body: dict[str, Any] = {"message": issue.message, "code": issue.code}
    if issue.field is not None:
        body["field"] = issue.field
    return ApiError(400, body)


def parameter_violation(name: str, message: str, code: str) -> ApiError:
    return ApiError(400, {"message": f"{name}: {message}", "field": name, "code": code})
