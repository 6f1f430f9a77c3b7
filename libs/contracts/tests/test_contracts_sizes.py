from datetime import UTC, datetime
from decimal import Decimal

import pytest
from stockpit_contracts import new_event
from stockpit_contracts.payloads.documents import DocumentKind, DocumentLine, DocumentVersionRead
from stockpit_contracts.sizes import MAX_EVENT_BYTES, MessageTooLarge, ensure_fits, excerpt


def _invoice(lines: int, label: str = "Chaise") -> bytes:
    document = DocumentVersionRead(
        kind=DocumentKind.INVOICE,
        pennylane_id=1,
        draft=False,
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
        lines=tuple(
            DocumentLine(pennylane_line_id=n, label=label, quantity=Decimal(1))
            for n in range(1, lines + 1)
        ),
    )
    return new_event(document, "tenant-a").to_json()


def test_an_event_within_the_limit_passes() -> None:
    ensure_fits("pennylane.document.version_read", _invoice(100))


def test_an_event_over_the_limit_is_refused_naming_its_largest_field() -> None:
    body = _invoice(1_000, label="é" * 1_000)
    assert len(body) > MAX_EVENT_BYTES
    with pytest.raises(MessageTooLarge) as refused:
        ensure_fits("pennylane.document.version_read", body)
    assert refused.value.field == "lines"
    assert str(len(body)) in str(refused.value)


def test_an_excerpt_is_bounded_and_says_it_was_cut() -> None:
    assert excerpt("short") == "short"
    cut = excerpt("x" * 10_000, 100)
    assert cut.startswith("x" * 100)
    assert "9900 more characters" in cut
    assert len(cut) < 200
