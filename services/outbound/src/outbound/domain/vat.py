"""Supplier invoice amounts: one line per VAT rate, totals that balance to the cent.

Pennylane's supplier invoice import takes amounts per VAT rate only (NOTES §11) and checks that the
lines add up to the invoice totals and that before-tax + tax = total. Amounts are rounded once per
VAT rate, half up to the cent (the French rule of computing VAT on the per-rate base), and every
total is a sum of already rounded figures, so all three equalities hold exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

CENT = Decimal("0.01")
ZERO = Decimal(0)

# Codes whose invoice carries no VAT: exemption, reverse charge (intra-community, construction),
# exports and cross-border services.
_UNTAXED_MARKERS = ("exempt", "intracom", "extracom", "crossborder", "construction")
# `FR_200` = 20 %, `FR_55` = 5.5 %, `FR_1_05` = 1.05 %, `DE_70_BU0002` = 7 %.
_RATE_CODE = re.compile(r"^[A-Z]{2}_(\d+)(?:_(\d+))?(?:_[A-Za-z0-9_]+)?$")


class UnsupportedVatRate(ValueError):
    """A VAT code whose rate cannot be derived (unknown, or `mixed`)."""


class PricedLine(Protocol):
    @property
    def quantity(self) -> Decimal: ...

    @property
    def unit_price_before_tax(self) -> Decimal: ...

    @property
    def vat_rate(self) -> str: ...


def vat_fraction(vat_rate: str) -> Decimal:
    """The tax share of a Pennylane VAT code, e.g. FR_200 -> 0.2; untaxed codes -> 0."""
    if vat_rate == "mixed":
        raise UnsupportedVatRate("the 'mixed' VAT code has no single rate; split the lines")
    if any(marker in vat_rate.split("_") for marker in _UNTAXED_MARKERS):
        return ZERO
    match = _RATE_CODE.match(vat_rate)
    if match is None:
        raise UnsupportedVatRate(f"unknown Pennylane VAT code {vat_rate!r}")
    whole, fraction = match.groups()
    percent = Decimal(f"{int(whole)}.{fraction}") if fraction else Decimal(whole) / 10
    return percent / 100


def round_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class VatGroup:
    vat_rate: str
    before_tax: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.before_tax + self.tax


@dataclass(frozen=True, slots=True)
class InvoiceAmounts:
    groups: tuple[VatGroup, ...]

    @property
    def before_tax(self) -> Decimal:
        return sum((group.before_tax for group in self.groups), ZERO)

    @property
    def tax(self) -> Decimal:
        return sum((group.tax for group in self.groups), ZERO)

    @property
    def total(self) -> Decimal:
        return sum((group.total for group in self.groups), ZERO)


def invoice_amounts(lines: Iterable[PricedLine]) -> InvoiceAmounts:
    """Group lines by VAT code (in code order) and compute each group's rounded amounts."""
    bases: dict[str, Decimal] = {}
    for line in lines:
        bases[line.vat_rate] = (
            bases.get(line.vat_rate, ZERO) + line.quantity * line.unit_price_before_tax
        )
    if not bases:
        raise ValueError("an invoice needs at least one line")
    groups = []
    for code in sorted(bases):
        before_tax = round_cents(bases[code])
        groups.append(VatGroup(code, before_tax, round_cents(before_tax * vat_fraction(code))))
    return InvoiceAmounts(tuple(groups))
