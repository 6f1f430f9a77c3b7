"""Amounts as Pennylane computes and prints them: Decimal in, strings out."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0")
_RATE_CODE = re.compile(r"^[A-Z]{2}_(\d+)(?:_(\d+))?(?:_|$)")
_UNTAXED_MARKERS = ("exempt", "intracom", "extracom", "crossborder", "mixed")


def vat_fraction(vat_rate: str) -> Decimal:
    """The VAT share of a Pennylane VAT code: FR_200 -> 0.2, FR_55 -> 0.055, FR_1_05 -> 0.0105.

    Exempt, intra-community (reverse charge), extra-community and mixed codes carry no tax on
    the invoice itself.
    """
    if any(marker in vat_rate for marker in _UNTAXED_MARKERS):
        return ZERO
    match = _RATE_CODE.match(vat_rate)
    if match is None:
        return ZERO
    whole, fraction = match.groups()
    percent = Decimal(f"{int(whole)}.{fraction}") if fraction else Decimal(whole) / 10
    return percent / 100


def round_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def format_amount(value: Decimal) -> str:
    """Money is printed with two decimals ("120.00")."""
    return str(round_cents(value))


def format_plain(value: Decimal) -> str:
    """Quantities, unit prices and rates are printed without trailing zeros ("12", "2.5")."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def parse_amount(text: str) -> Decimal | None:
    """A decimal string as Pennylane accepts it, or None when it is not one."""
    try:
        value = Decimal(text)
    except ArithmeticError:
        return None
    return value if value.is_finite() else None
