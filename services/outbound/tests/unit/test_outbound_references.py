import pytest
from outbound.domain.references import (
    external_reference,
    normalized_supplier_name,
    supplier_reference,
)


def test_external_reference_names_tenant_kind_and_record() -> None:
    assert external_reference("t-1", "customer", "c42") == "stockpit:t-1:customer:c42"
    assert external_reference("t-1", "receipt", "r7") == "stockpit:t-1:receipt:r7"


def test_external_reference_is_the_same_on_every_call_and_distinct_per_tenant() -> None:
    assert external_reference("a", "product", "1") == external_reference("a", "product", "1")
    assert external_reference("a", "product", "1") != external_reference("b", "product", "1")
    assert external_reference("a", "product", "1") != external_reference("a", "customer", "1")


def test_external_reference_needs_tenant_and_id() -> None:
    with pytest.raises(ValueError, match="needs a tenant"):
        external_reference("", "product", "1")
    with pytest.raises(ValueError, match="needs a tenant"):
        external_reference("t", "product", "")


def test_supplier_reference_ignores_case_and_spacing() -> None:
    assert normalized_supplier_name("  ACME   Tools ") == "acme tools"
    assert supplier_reference("t", "Acme Tools") == supplier_reference("t", " acme  TOOLS")
    assert supplier_reference("t", "Acme Tools") != supplier_reference("t", "Acme Tool")
    assert supplier_reference("t", "Acme").startswith("stockpit:t:supplier:")
    assert len(supplier_reference("t", "x" * 2000)) < 80


def test_supplier_reference_needs_a_name() -> None:
    with pytest.raises(ValueError, match="needs a name"):
        supplier_reference("t", "   ")
