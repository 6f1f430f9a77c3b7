"""The stock count file (rule 17): French and English spreadsheet formats, every kind of bad row
(each listed with its line, the file refused whole), and the ledger entries a count makes."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest
from inventory.domain.catalog import Location, Product
from inventory.domain.stock import CauseKind, StockKey
from inventory.domain.stock_count import (
    MAX_COUNT_BYTES,
    BadRow,
    CountRefused,
    CountRow,
    check_count,
    count_outcome,
    decode_file,
    parse_count,
    parse_quantity,
)

D = Decimal
TENANT = "shop"


def _refused(text: str, **kwargs: int) -> list[BadRow]:
    with pytest.raises(CountRefused) as refused:
        parse_count(text, **kwargs)
    return list(refused.value.rows)


def test_french_spreadsheet_semicolons_decimal_commas_bom_and_cp1252() -> None:
    text = decode_file(
        "\ufeffsku;location;counted\r\nCH-1;Principal;12,5\r\nTB-2;Entrepôt;1 234\r\n".encode()
    )
    assert parse_count(text) == [
        CountRow(2, "CH-1", None, "Principal", D("12.5")),
        CountRow(3, "TB-2", None, "Entrepôt", D("1234")),
    ]
    legacy = decode_file("sku;location;counted\nCH-1;Entrepôt;3\n".encode("cp1252"))
    assert parse_count(legacy)[0].location == "Entrepôt"


def test_comma_separated_with_quoted_decimal_comma_and_any_column_order() -> None:
    product_id = uuid4()
    text = (
        f'Counted,Location,Product_ID,SKU\n"4,25",Van,{product_id},\n7,Van,,CH-1\n\n'
        "0.5 , Principal ,, TB-2 \n"
    )
    assert parse_count(text) == [
        CountRow(2, None, product_id, "Van", D("4.25")),
        CountRow(3, "CH-1", None, "Van", D("7")),
        CountRow(5, "TB-2", None, "Principal", D("0.5")),
    ]


@pytest.mark.parametrize(
    ("figure", "expected"),
    [("0", D(0)), ("12", D(12)), ("12,50", D("12.50")), ("1\u202f000,5", D("1000.5"))],
)
def test_quantities(figure: str, expected: Decimal) -> None:
    assert parse_quantity(figure) == expected


def test_every_kind_of_bad_row_is_listed_with_its_line_and_the_file_refused() -> None:
    text = (
        "sku;product_id;location;counted\n"
        "CH-1;;Principal;3\n"  # fine
        "CH-2;;Principal;trois\n"  # not a number
        "CH-3;;Principal;-2\n"  # negative
        ";;Principal;1\n"  # no product
        "CH-4;;;1\n"  # no location
        "CH-5;;Principal;\n"  # empty counted
        "CH-6;pas-un-id;Principal;1\n"  # product id is not an id
        "CH-7;;Principal;1,2345678\n"  # too many decimals
        "CH-8;;Principal;1.234,5\n"  # ambiguous grouping
        "CH-9;;Principal;1;extra\n"  # too many cells
    )
    assert [(row.line, row.reason.split(" ")[0]) for row in _refused(text)] == [
        (3, "counted"),
        (4, "counted"),
        (5, "no"),
        (6, "no"),
        (7, "counted"),
        (8, "product_id"),
        (9, "counted"),
        (10, "counted"),
        (11, "5"),
    ]
    reasons = {row.line: row.reason for row in _refused(text)}
    assert "not a number" in reasons[3]
    assert "negative" in reasons[4]
    assert "empty" in reasons[7]


def test_bad_files() -> None:
    assert _refused("") == [BadRow(0, "the file is empty")]
    assert _refused("sku;location;counted\n\n")[0].reason == "the file has no row to count"
    [missing] = _refused("produit;lieu;quantité\nCH-1;Principal;1\n")
    assert missing.line == 1
    assert "sku or product_id, location, counted" in missing.reason
    [too_many] = _refused("sku;location;counted\n" + "CH;P;1\n" * 4, max_rows=3)
    assert too_many.line == 5
    with pytest.raises(CountRefused):
        decode_file(b"x" * (MAX_COUNT_BYTES + 1))


def _catalog() -> tuple[list[Product], list[Location]]:
    chair, _ = Product.create_in_stockpit(TENANT, "Chaise", "CH-1")
    table, _ = Product.create_in_stockpit(TENANT, "Table", "TB-2")
    twin_a, _ = Product.create_in_stockpit(TENANT, "Lampe", "LA-1")
    twin_b, _ = Product.create_in_stockpit(TENANT, "Lampe bis", "la-1")
    service, _ = Product.create_in_stockpit(TENANT, "Pose", "SRV", is_service=True)
    gone, _ = Product.create_in_stockpit(TENANT, "Ancien", "OLD")
    gone.delete()
    principal = Location.create(TENANT, "Principal")
    van = Location.create(TENANT, "Camionnette")
    closed = Location.create(TENANT, "Fermé")
    closed.active = False
    return [chair, table, twin_a, twin_b, service, gone], [principal, van, closed]


def test_rows_resolve_to_products_and_locations_with_current_real_stock() -> None:
    products, locations = _catalog()
    chair, table = products[0], products[1]
    principal, van = locations[0], locations[1]
    real = {StockKey(chair.product_id, principal.location_id): D(-3)}
    rows = parse_count(
        f"sku;product_id;location;counted\nch-1;;principal;5\n;{table.product_id};"
        f"{van.location_id};2,5\n"
    )
    lines = check_count(rows, products, locations, real)
    assert [
        (line.product_name, line.location_name, line.current_real, line.counted, line.difference)
        for line in lines
    ] == [
        ("Chaise", "Principal", D(-3), D(5), D(8)),
        ("Table", "Camionnette", D(0), D("2.5"), D("2.5")),
    ]

    count_id = uuid4()
    outcome = count_outcome(count_id, lines, "inventaire de novembre")
    assert [(m.key, m.delta.real, m.cause.kind) for m in outcome.movements] == [
        (StockKey(chair.product_id, principal.location_id), D(8), CauseKind.COUNT),
        (StockKey(table.product_id, van.location_id), D("2.5"), CauseKind.COUNT),
    ]
    assert outcome.movements[0].cause.reference == f"count:{count_id}"
    assert outcome.movements[0].cause.note == "inventaire de novembre"
    # A row counted as it already is moves nothing.
    same = check_count(
        parse_count("sku;location;counted\nTB-2;Principal;0\n"), products, locations, {}
    )
    assert count_outcome(uuid4(), same, "n").movements == []


def test_rows_naming_unknown_ambiguous_or_unstockable_things_are_listed() -> None:
    products, locations = _catalog()
    text = (
        "sku;product_id;location;counted\n"
        "CH-1;;Principal;1\n"  # line 2: fine
        "NOPE;;Principal;1\n"  # unknown SKU
        "CH-1;;Grenier;1\n"  # unknown location
        "LA-1;;Principal;1\n"  # SKU of two products
        "SRV;;Principal;1\n"  # a service
        "OLD;;Principal;1\n"  # deleted product
        "TB-2;;Fermé;1\n"  # inactive location
        f";{uuid4()};Principal;1\n"  # unknown product id
        f"TB-2;{products[0].product_id};Principal;1\n"  # id and SKU disagree
        "ch-1;;PRINCIPAL;4\n"  # the same product and location as line 2
    )
    with pytest.raises(CountRefused) as refused:
        check_count(parse_count(text), products, locations, {})
    reasons = {row.line: row.reason for row in refused.value.rows}
    assert sorted(reasons) == list(range(3, 12))
    assert reasons[3] == "unknown SKU 'NOPE'"
    assert reasons[4] == "unknown location 'Grenier'"
    assert "names 2 products" in reasons[5]
    assert "service" in reasons[6]
    assert "deleted" in reasons[7]
    assert "inactive" in reasons[8]
    assert reasons[9].startswith("unknown product_id")
    assert "has SKU 'CH-1', not 'TB-2'" in reasons[10]
    assert reasons[11] == "'Chaise' at 'Principal' is already counted on line 2"
    assert "line 3: unknown SKU 'NOPE'" in str(refused.value)
