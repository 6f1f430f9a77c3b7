"""A stock count from a spreadsheet (rule 17): parse the file, check every row, plan the entries.

The file is CSV with a header naming `sku` or `product_id` (or both), `location` and `counted`;
`;` or `,` separated (French spreadsheets save with `;` and decimal commas), UTF-8 (with or
without a BOM) or Windows-1252. A file with any bad row is refused whole, every bad row listed
with its line number: a count is applied entirely or not at all. Applying sets real stock to the
counted figure through ledger entries of cause "count", one per product × location that differs.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from uuid import UUID

from inventory.domain.catalog import Location, Product
from inventory.domain.errors import DomainError
from inventory.domain.outcome import Outcome
from inventory.domain.stock import Cause, CauseKind, Effect, StockKey, StockMovement
from inventory.domain.values import ZERO

MAX_COUNT_BYTES = 2 * 1024 * 1024
MAX_COUNT_ROWS = 20_000
MAX_COUNTED = Decimal("1000000000")
MAX_DECIMAL_PLACES = 6
SEPARATORS = (";", ",", "\t")
_SPACES = re.compile(r"[\s\u00a0\u202f]")  # thousands groups in French: (narrow) no-break spaces
_NUMBER = re.compile(r"^\+?\d+([.,]\d+)?$")


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


class CountRefused(DomainError):
    """The file is refused whole; `rows` lists every bad row (line 0: the file itself)."""

    def __init__(self, rows: Sequence[BadRow]) -> None:
        self.rows = tuple(rows)
        super().__init__(
            "stock count refused, nothing applied: "
            + "; ".join(f"line {row.line}: {row.reason}" for row in self.rows[:20])
            + (f"; and {len(self.rows) - 20} more" if len(self.rows) > 20 else "")
        )


@dataclass(frozen=True)
class CountRow:
    """One row as the file says it (not yet checked against the catalog)."""

    line: int
    sku: str | None
    product_id: UUID | None
    location: str
    counted: Decimal


@dataclass(frozen=True)
class CountLine:
    """One product × location of a checked count: what it is, what it will become."""

    line: int
    product_id: UUID
    product_name: str
    sku: str | None
    location_id: UUID
    location_name: str
    current_real: Decimal
    counted: Decimal

    @property
    def difference(self) -> Decimal:
        return self.counted - self.current_real

    @property
    def key(self) -> StockKey:
        return StockKey(self.product_id, self.location_id)


def decode_file(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), else Windows-1252: what spreadsheets save a CSV as."""
    if len(data) > MAX_COUNT_BYTES:
        raise CountRefused([BadRow(0, f"the file is larger than {MAX_COUNT_BYTES} bytes")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_quantity(text: str) -> Decimal:
    """A counted figure: "12", "12.5", "12,5", "1 234,5". Raises ValueError with the reason."""
    cleaned = _SPACES.sub("", text)
    if not cleaned:
        raise ValueError("counted is empty")
    if cleaned.startswith("-") and _NUMBER.match(cleaned[1:]):
        raise ValueError(f"counted {text.strip()!r} is negative")
    if not _NUMBER.match(cleaned):
        raise ValueError(f"counted {text.strip()!r} is not a number")
    try:
        value = Decimal(cleaned.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"counted {text.strip()!r} is not a number") from None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMAL_PLACES:
        raise ValueError(f"counted {text.strip()!r} has more than {MAX_DECIMAL_PLACES} decimals")
    if value > MAX_COUNTED:
        raise ValueError(f"counted {text.strip()!r} is larger than {MAX_COUNTED}")
    return value


def _separator(header_line: str) -> str:
    """The separator the header uses: the one that splits it into the most columns."""
    return max(SEPARATORS, key=header_line.count)


def parse_count(text: str, *, max_rows: int = MAX_COUNT_ROWS) -> list[CountRow]:
    """Every row of the file, or CountRefused listing every row that cannot be read."""
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise CountRefused([BadRow(0, "the file is empty")])
    reader = csv.reader(io.StringIO(text), delimiter=_separator(lines[header_at]))
    header: list[str] | None = None
    rows: list[CountRow] = []
    bad: list[BadRow] = []
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in record]
            missing = _missing_columns(header)
            if missing:
                raise CountRefused([BadRow(line, missing)])
            continue
        if len(rows) + len(bad) >= max_rows:
            raise CountRefused([BadRow(line, f"the file has more than {max_rows} rows")])
        row = _row(line, header, record)
        if isinstance(row, BadRow):
            bad.append(row)
        else:
            rows.append(row)
    if bad:
        raise CountRefused(bad)
    if not rows:
        raise CountRefused([BadRow(0, "the file has no row to count")])
    return rows


def _missing_columns(header: list[str]) -> str | None:
    wanted = []
    if "sku" not in header and "product_id" not in header:
        wanted.append("sku or product_id")
    wanted += [name for name in ("location", "counted") if name not in header]
    if not wanted:
        return None
    return f"the header must name {', '.join(wanted)} (it has: {', '.join(header)})"


def _row(line: int, header: list[str], record: list[str]) -> CountRow | BadRow:
    if len(record) > len(header) and any(cell.strip() for cell in record[len(header) :]):
        return BadRow(line, f"{len(record)} cells for {len(header)} columns")
    cells = {name: (record[i].strip() if i < len(record) else "") for i, name in enumerate(header)}
    sku = cells.get("sku") or None
    raw_id = cells.get("product_id") or None
    product_id: UUID | None = None
    if raw_id is not None:
        try:
            product_id = UUID(raw_id)
        except ValueError:
            return BadRow(line, f"product_id {raw_id!r} is not a product id")
    if sku is None and product_id is None:
        return BadRow(line, "no sku nor product_id")
    location = cells.get("location", "")
    if not location:
        return BadRow(line, "no location")
    try:
        counted = parse_quantity(cells.get("counted", ""))
    except ValueError as exc:
        return BadRow(line, str(exc))
    return CountRow(line, sku, product_id, location, counted)


def check_count(
    rows: Sequence[CountRow],
    products: Iterable[Product],
    locations: Iterable[Location],
    real: Mapping[StockKey, Decimal],
) -> list[CountLine]:
    """Each row resolved to a product and a location of the tenant, with its current real
    stock; CountRefused listing every row that names something unknown or twice."""
    by_id: dict[UUID, Product] = {}
    by_sku: dict[str, list[Product]] = {}
    for product in products:
        by_id[product.product_id] = product
        if product.sku:
            by_sku.setdefault(product.sku.strip().casefold(), []).append(product)
    places: dict[str, list[Location]] = {}
    for location in locations:
        places.setdefault(location.name.strip().casefold(), []).append(location)
        places.setdefault(str(location.location_id), []).append(location)
    checked: list[CountLine] = []
    bad: list[BadRow] = []
    seen: dict[StockKey, int] = {}
    for row in rows:
        found = _product(row, by_id, by_sku)
        place = _location(row, places)
        if isinstance(found, str) or isinstance(place, str):
            reasons = [r for r in (found, place) if isinstance(r, str)]
            bad.append(BadRow(row.line, "; ".join(reasons)))
            continue
        product, location = found, place
        key = StockKey(product.product_id, location.location_id)
        if key in seen:
            bad.append(
                BadRow(
                    row.line,
                    f"{product.name!r} at {location.name!r} is already counted on line {seen[key]}",
                )
            )
            continue
        seen[key] = row.line
        checked.append(
            CountLine(
                line=row.line,
                product_id=product.product_id,
                product_name=product.name,
                sku=product.sku,
                location_id=location.location_id,
                location_name=location.name,
                current_real=real.get(key, ZERO),
                counted=row.counted,
            )
        )
    if bad:
        raise CountRefused(bad)
    return checked


def _product(
    row: CountRow, by_id: Mapping[UUID, Product], by_sku: Mapping[str, list[Product]]
) -> Product | str:
    product: Product | None = None
    if row.product_id is not None:
        product = by_id.get(row.product_id)
        if product is None:
            return f"unknown product_id {row.product_id}"
        if row.sku is not None and (product.sku or "").strip().casefold() != row.sku.casefold():
            return f"product_id {row.product_id} has SKU {product.sku!r}, not {row.sku!r}"
    else:
        assert row.sku is not None
        named = by_sku.get(row.sku.casefold(), [])
        if not named:
            return f"unknown SKU {row.sku!r}"
        # A deleted product keeps its SKU: it counts only when no live product has it.
        live = [p for p in named if not p.deleted] or named
        if len(live) > 1:
            return f"SKU {row.sku!r} names {len(live)} products: give the product_id"
        product = live[0]
    if product.deleted:
        return f"product {product.name!r} is deleted"
    if product.is_service:
        return f"{product.name!r} is a service: services carry no stock"
    return product


def _location(row: CountRow, places: Mapping[str, list[Location]]) -> Location | str:
    named = places.get(row.location.casefold(), [])
    if not named:
        return f"unknown location {row.location!r}"
    if len(named) > 1:
        return f"location name {row.location!r} names {len(named)} locations: give its id"
    if not named[0].active:
        return f"location {named[0].name!r} is inactive"
    return named[0]


def count_outcome(count_id: UUID, lines: Sequence[CountLine], note: str) -> Outcome:
    """Ledger movements of cause "count" bringing real stock to each counted figure."""
    cause = Cause(CauseKind.COUNT, count_id, f"count:{count_id}", note=note[:500] or None)
    return Outcome(
        movements=[
            StockMovement(line.key, Effect(real=line.difference), cause)
            for line in lines
            if line.difference != ZERO
        ]
    )
