from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from outbound.domain.vat import UnsupportedVatRate, invoice_amounts, vat_fraction


@dataclass(frozen=True)
class Line:
    quantity: Decimal
    unit_price_before_tax: Decimal
    vat_rate: str


@pytest.mark.parametrize(
    ("code", "fraction"),
    [
        ("FR_200", Decimal("0.2")),
        ("FR_100", Decimal("0.1")),
        ("FR_55", Decimal("0.055")),
        ("FR_21", Decimal("0.021")),
        ("FR_09", Decimal("0.009")),
        ("FR_1_05", Decimal("0.0105")),
        ("DE_70_BU0002", Decimal("0.07")),
        ("exempt", Decimal(0)),
        ("intracom_21", Decimal(0)),
        ("DE_intracom_190_BU0013", Decimal(0)),
        ("extracom", Decimal(0)),
        ("crossborder", Decimal(0)),
        ("FR_200_construction", Decimal(0)),
    ],
)
def test_vat_fraction_reads_pennylane_codes(code: str, fraction: Decimal) -> None:
    assert vat_fraction(code) == fraction


@pytest.mark.parametrize("code", ["mixed", "twenty", "FR200", ""])
def test_vat_fraction_refuses_codes_without_a_rate(code: str) -> None:
    with pytest.raises(UnsupportedVatRate):
        vat_fraction(code)


def test_lines_are_grouped_per_rate_and_rounded_once_per_rate() -> None:
    amounts = invoice_amounts(
        [
            Line(Decimal(3), Decimal("0.335"), "FR_200"),  # 1.005
            Line(Decimal(1), Decimal("0.01"), "FR_200"),
            Line(Decimal(2), Decimal("10.10"), "FR_55"),
        ]
    )
    by_rate = {group.vat_rate: group for group in amounts.groups}
    assert [group.vat_rate for group in amounts.groups] == ["FR_200", "FR_55"]
    # 1.015 rounds half up to 1.02 (not 1.01 + 0.01 rounded separately, and not banker's 1.02)
    assert by_rate["FR_200"].before_tax == Decimal("1.02")
    assert by_rate["FR_200"].tax == Decimal("0.20")  # 0.204
    assert by_rate["FR_55"].before_tax == Decimal("20.20")
    assert by_rate["FR_55"].tax == Decimal("1.11")  # 1.111
    assert amounts.before_tax == Decimal("21.22")
    assert amounts.tax == Decimal("1.31")
    assert amounts.total == Decimal("22.53")


def test_half_cents_round_up() -> None:
    amounts = invoice_amounts([Line(Decimal(1), Decimal("0.125"), "FR_200")])
    assert amounts.before_tax == Decimal("0.13")
    assert amounts.tax == Decimal("0.03")  # 0.026


def test_an_invoice_needs_lines() -> None:
    with pytest.raises(ValueError, match="at least one line"):
        invoice_amounts([])


money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100000), places=4)
quantity = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10000), places=3)
codes = st.sampled_from(["FR_200", "FR_100", "FR_55", "FR_21", "exempt", "intracom_21", "FR_85"])


@given(st.lists(st.builds(Line, quantity, money, codes), min_size=1, max_size=40))
def test_totals_always_balance_to_the_cent(lines: list[Line]) -> None:
    amounts = invoice_amounts(lines)
    cent = Decimal("0.01")
    for group in amounts.groups:
        assert group.before_tax == group.before_tax.quantize(cent)
        assert group.tax == group.tax.quantize(cent)
        assert group.before_tax + group.tax == group.total
        assert abs(group.tax - group.before_tax * vat_fraction(group.vat_rate)) <= cent / 2
    assert sum(g.total for g in amounts.groups) == amounts.total
    assert sum(g.tax for g in amounts.groups) == amounts.tax
    assert amounts.before_tax + amounts.tax == amounts.total
    assert len({g.vat_rate for g in amounts.groups}) == len(amounts.groups)
    exact = sum(line.quantity * line.unit_price_before_tax for line in lines)
    assert abs(amounts.before_tax - exact) <= cent / 2 * len(amounts.groups)
