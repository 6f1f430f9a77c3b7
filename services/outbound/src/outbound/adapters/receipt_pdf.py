"""A purchase receipt rendered as the PDF that Pennylane files as the supplier invoice document.

fpdf2 writes PDF directly in pure Python (no C extension, ships its own type hints), which is all
a one-page table needs. Its built-in Helvetica covers Latin-1 only; other characters are replaced
so that an odd product name never stops a receipt from being sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from outbound.domain.vat import InvoiceAmounts, PricedLine, round_cents


@dataclass(frozen=True, slots=True)
class ReceiptDocument:
    tenant_id: str
    receipt_id: str
    purchase_id: str
    supplier_name: str
    received_on: dt.date
    currency: str
    lines: Sequence[LabelledLine]
    amounts: InvoiceAmounts


class LabelledLine(PricedLine, Protocol):
    @property
    def label(self) -> str: ...


def _latin1(text: str) -> str:
    return text.replace("€", "EUR").encode("latin-1", errors="replace").decode("latin-1")


def _money(value: Decimal, currency: str) -> str:
    return f"{round_cents(value):,.2f} {currency}".replace(",", " ")


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value != value.to_integral_value() else f"{value:.0f}"


_COLUMNS = (("Item", 78), ("Qty", 18), ("Unit price excl. VAT", 36), ("VAT", 22), ("Excl. VAT", 36))


def render_receipt_pdf(receipt: ReceiptDocument) -> bytes:
    pdf = FPDF(format="A4")
    # A fixed creation date: the same receipt always renders to the same bytes.
    pdf.set_creation_date(dt.datetime.combine(receipt.received_on, dt.time(), tzinfo=dt.UTC))
    pdf.set_title(_latin1(f"Purchase receipt {receipt.receipt_id}"))
    pdf.set_author("Stockpit")
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(0, 10, "Purchase receipt", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=10)
    for caption, value in (
        ("Supplier", receipt.supplier_name),
        ("Receipt", receipt.receipt_id),
        ("Purchase", receipt.purchase_id),
        ("Received on", receipt.received_on.isoformat()),
        ("Currency", receipt.currency),
    ):
        pdf.cell(0, 6, _latin1(f"{caption}: {value}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    pdf.set_font("Helvetica", style="B", size=9)
    for title, width in _COLUMNS:
        pdf.cell(width, 7, title, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    for line in receipt.lines:
        cells = (
            line.label,
            _plain(line.quantity),
            _money(line.unit_price_before_tax, receipt.currency),
            line.vat_rate,
            _money(line.quantity * line.unit_price_before_tax, receipt.currency),
        )
        for (_title, width), text in zip(_COLUMNS, cells, strict=True):
            pdf.cell(width, 6, _latin1(text)[:60], border=1)
        pdf.ln()
    pdf.ln(4)

    pdf.set_font("Helvetica", style="B", size=9)
    for title in ("VAT", "Excl. VAT", "VAT amount", "Incl. VAT"):
        pdf.cell(40, 7, title, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    for group in receipt.amounts.groups:
        for text in (
            group.vat_rate,
            _money(group.before_tax, receipt.currency),
            _money(group.tax, receipt.currency),
            _money(group.total, receipt.currency),
        ):
            pdf.cell(40, 6, _latin1(text), border=1)
        pdf.ln()
    pdf.set_font("Helvetica", style="B", size=9)
    for text in (
        "Total",
        _money(receipt.amounts.before_tax, receipt.currency),
        _money(receipt.amounts.tax, receipt.currency),
        _money(receipt.amounts.total, receipt.currency),
    ):
        pdf.cell(40, 7, _latin1(text), border=1)
    pdf.ln()
    return bytes(pdf.output())
