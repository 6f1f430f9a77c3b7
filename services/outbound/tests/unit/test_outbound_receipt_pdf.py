import datetime as dt
import re
import zlib
from dataclasses import dataclass
from decimal import Decimal

from outbound.adapters.receipt_pdf import ReceiptDocument, render_receipt_pdf
from outbound.domain.vat import invoice_amounts


@dataclass(frozen=True)
class Line:
    label: str
    quantity: Decimal
    unit_price_before_tax: Decimal
    vat_rate: str


def receipt(**overrides: object) -> ReceiptDocument:
    lines = [
        Line("Vis inox 4x40 (boîte)", Decimal(12), Decimal("3.335"), "FR_200"),
        Line("Livre technique", Decimal(1), Decimal("20.00"), "FR_55"),
    ]
    values: dict[str, object] = {
        "tenant_id": "t1",
        "receipt_id": "rcpt-1",
        "purchase_id": "po-9",
        "supplier_name": "Quincaillerie Dupré",
        "received_on": dt.date(2026, 3, 14),
        "currency": "EUR",
        "lines": lines,
        "amounts": invoice_amounts(lines),
    }
    values.update(overrides)
    return ReceiptDocument(**values)  # type: ignore[arg-type]


def check_structure(pdf: bytes) -> None:
    """Header, trailer and a cross-reference table whose every offset lands on its object."""
    assert pdf.startswith(b"%PDF-1.")
    assert pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    assert pdf[startxref : startxref + 4] == b"xref"
    header = re.match(rb"xref\s+(\d+)\s+(\d+)\s+", pdf[startxref:])
    assert header is not None
    first, count = int(header.group(1)), int(header.group(2))
    entries = pdf[startxref + header.end() :].split(b"\n")[:count]
    in_use = 0
    for number, entry in enumerate(entries, start=first):
        offset, _generation, kind = entry.split()[:3]
        if kind == b"n":
            in_use += 1
            assert re.match(rb"%d 0 obj" % number, pdf[int(offset) :]), number
    assert in_use >= 5
    assert b"/Type /Catalog" in pdf
    assert re.search(rb"/Count 1\b", pdf)


def page_text(pdf: bytes) -> bytes:
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, flags=re.DOTALL)
    text = b""
    for stream in streams:
        try:
            text += zlib.decompress(stream)
        except zlib.error:
            text += stream
    return text


def test_receipt_renders_as_a_valid_one_page_pdf() -> None:
    pdf = render_receipt_pdf(receipt())
    check_structure(pdf)


def test_pdf_shows_supplier_lines_and_balanced_totals() -> None:
    pdf = render_receipt_pdf(receipt())
    text = page_text(pdf)
    assert "Quincaillerie Dupré".encode("latin-1") in text
    assert b"rcpt-1" in text
    assert b"40.02 EUR" in text  # 12 x 3.335 = 40.02
    assert b"8.00 EUR" in text  # 20 % of 40.02 = 8.004
    assert b"1.10 EUR" in text  # 5.5 % of 20.00
    assert b"69.12 EUR" in text  # 40.02 + 8.00 + 20.00 + 1.10


def test_same_receipt_renders_to_the_same_bytes() -> None:
    assert render_receipt_pdf(receipt()) == render_receipt_pdf(receipt())


def test_characters_outside_latin1_do_not_stop_rendering() -> None:
    lines = [Line("Clé 🔧 à œillet €", Decimal(1), Decimal(5), "FR_200")]
    pdf = render_receipt_pdf(receipt(lines=lines, amounts=invoice_amounts(lines)))
    check_structure(pdf)
    assert b"EUR" in page_text(pdf)
