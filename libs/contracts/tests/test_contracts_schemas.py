"""Published schemas (libs/contracts/schemas) may only change compatibly under the same version."""

import copy
import json
from typing import Any

import pytest
from stockpit_contracts.schemas import PUBLISHED_DIR, breaking_changes, current_schemas


def test_every_current_schema_is_published() -> None:
    missing = sorted(set(current_schemas()) - {p.name for p in PUBLISHED_DIR.glob("*.json")})
    assert not missing, f"run `uv run python -m stockpit_contracts.schemas` and commit: {missing}"


@pytest.mark.parametrize("name", sorted(p.name for p in PUBLISHED_DIR.glob("*.json")))
def test_the_published_schema_is_the_current_one(name: str) -> None:
    """A compatible change is published too: readers of libs/contracts/schemas see every field."""
    current = current_schemas().get(name)
    assert current is not None, f"{name} was published and its event type or version is gone"
    published = json.loads((PUBLISHED_DIR / name).read_text())
    assert published == current, f"run `uv run python -m stockpit_contracts.schemas`: {name}"


@pytest.mark.parametrize("name", sorted(p.name for p in PUBLISHED_DIR.glob("*.json")))
def test_published_schema_is_still_honoured(name: str) -> None:
    published = json.loads((PUBLISHED_DIR / name).read_text())
    current = current_schemas().get(name)
    assert current is not None, f"{name} was published and its event type or version is gone"
    assert breaking_changes(published, current) == []


def _schema() -> dict[str, Any]:
    return copy.deepcopy(current_schemas()["pennylane.document.version_read.v1.json"])


def test_the_checker_sees_a_removed_property() -> None:
    new = _schema()
    del new["$defs"]["DocumentLine"]["properties"]["quantity"]
    assert any("quantity: property removed" in p for p in breaking_changes(_schema(), new))


def test_the_checker_sees_a_changed_type() -> None:
    new = _schema()
    new["$defs"]["DocumentLine"]["properties"]["label"] = {"type": "integer"}
    assert any("label: type changed" in p for p in breaking_changes(_schema(), new))


def test_the_checker_sees_a_newly_required_field() -> None:
    new = _schema()
    new["$defs"]["DocumentLine"]["required"].append("unit")
    assert any("unit: newly required" in p for p in breaking_changes(_schema(), new))


def test_the_checker_sees_a_changed_enum() -> None:
    new = _schema()
    new["$defs"]["DocumentKind"]["enum"].append("quote")
    assert any("allowed values changed" in p for p in breaking_changes(_schema(), new))


def test_an_added_optional_field_is_compatible() -> None:
    new = _schema()
    new["$defs"]["DocumentLine"]["properties"]["note"] = {"type": "string"}
    assert breaking_changes(_schema(), new) == []
