"""In-memory state of every sandbox company: records, id-ordered tables, changelogs."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Generic, Literal, Protocol, TypeVar

from .money import ZERO, round_cents, vat_fraction


class Clock:
    """Wall-clock UTC time plus an offset that the admin surface can move forward."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, delta: dt.timedelta) -> None:
        if delta < dt.timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        self.offset += delta


@dataclass(slots=True)
class Discount:
    kind: Literal["absolute", "relative"]
    value: Decimal


@dataclass(slots=True)
class Line:
    """A line of a customer invoice, quote or commercial document."""

    id: int
    label: str
    description: str
    unit: str | None
    quantity: Decimal
    unit_price: Decimal
    vat_rate: str
    product_id: int | None
    ledger_account_id: int | None
    discount: Discount | None
    section_rank: int | None
    imputation_dates: tuple[dt.date, dt.date] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    before_tax: Decimal = ZERO
    tax: Decimal = ZERO

    def reprice(self) -> None:
        gross = self.quantity * self.unit_price
        if self.discount is None:
            net = gross
        elif self.discount.kind == "relative":
            net = gross * (1 - self.discount.value / 100)
        else:
            net = gross - self.discount.value
        self.before_tax = round_cents(net)
        self.tax = round_cents(self.before_tax * vat_fraction(self.vat_rate))

    @property
    def total(self) -> Decimal:
        return self.before_tax + self.tax


DocumentKind = Literal["customer_invoice", "quote", "commercial_document"]


@dataclass(slots=True)
class SalesDocument:
    """Customer invoices (and credit notes), quotes and commercial documents share this shape."""

    id: int
    kind: DocumentKind
    customer_id: int
    date: dt.date
    deadline: dt.date
    lines: list[Line]
    external_reference: str
    created_at: dt.datetime
    updated_at: dt.datetime
    label: str | None = None
    number: str = ""
    currency: str = "EUR"
    language: str = "fr_FR"
    discount: Discount | None = None
    special_mention: str | None = None
    pdf_invoice_free_text: str = ""
    pdf_invoice_subject: str = ""
    pdf_description: str | None = None
    template_id: int | None = None
    draft: bool = False
    document_type: str = ""
    quote_id: int | None = None
    credited_invoice_id: int | None = None
    quote_status: str = "pending"
    transaction_reference: dict[str, str] | None = None
    archived_at: dt.datetime | None = None
    finalized_at: dt.datetime | None = None

    def totals(self) -> tuple[Decimal, Decimal]:
        """(before tax, tax) summed over the lines in one pass."""
        before_tax = tax = ZERO
        for line in self.lines:
            before_tax += line.before_tax
            tax += line.tax
        return before_tax, tax

    @property
    def total(self) -> Decimal:
        before_tax, tax = self.totals()
        return before_tax + tax

    @property
    def is_credit_note(self) -> bool:
        return self.kind == "customer_invoice" and self.total < 0


@dataclass(slots=True)
class Product:
    id: int
    label: str
    description: str
    external_reference: str
    price_before_tax: Decimal
    vat_rate: str
    unit: str
    currency: str
    reference: str | None
    ledger_account_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    archived_at: dt.datetime | None = None


@dataclass(slots=True)
class LedgerAccount:
    id: int
    number: str
    label: str
    vat_rate: str
    country_alpha2: str
    enabled: bool
    letterable: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    type: str = "custom"
    external_reference: str = ""  # not part of Pennylane's ledger account; keeps Table uniform


@dataclass(slots=True)
class Address:
    address: str
    postal_code: str
    city: str
    country_alpha2: str


@dataclass(slots=True)
class Customer:
    id: int
    customer_type: Literal["company", "individual"]
    name: str
    external_reference: str
    billing_address: Address
    delivery_address: Address
    created_at: dt.datetime
    updated_at: dt.datetime
    first_name: str = ""
    last_name: str = ""
    vat_number: str = ""
    reg_no: str = ""
    emails: list[str] = field(default_factory=list)
    phone: str = ""
    reference: str | None = None
    notes: str | None = None
    recipient: str = ""
    billing_iban: str | None = None
    payment_conditions: str = "30_days"
    billing_language: str = "fr_FR"
    ledger_account_id: int | None = None


@dataclass(slots=True)
class Supplier:
    id: int
    name: str
    external_reference: str
    created_at: dt.datetime
    updated_at: dt.datetime
    establishment_no: str | None = None
    reg_no: str | None = None
    vat_number: str = ""
    emails: list[str] = field(default_factory=list)
    iban: str = ""
    postal_address: Address = field(default_factory=lambda: Address("", "", "", "FR"))
    supplier_payment_method: str | None = None
    supplier_due_date_delay: int | None = None
    supplier_due_date_rule: str | None = None
    ledger_account_id: int | None = None


@dataclass(slots=True)
class FileAttachment:
    id: int
    filename: str
    content: bytes
    content_type: str
    created_at: dt.datetime
    updated_at: dt.datetime
    external_reference: str = ""


@dataclass(slots=True)
class SupplierInvoiceLine:
    id: int
    label: str
    description: str
    vat_rate: str
    currency_amount: Decimal
    currency_tax: Decimal
    amount: Decimal
    tax: Decimal
    ledger_account_id: int | None
    imputation_dates: tuple[dt.date, dt.date] | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(slots=True)
class SupplierInvoice:
    id: int
    supplier_id: int
    file_attachment_id: int
    date: dt.date
    deadline: dt.date
    invoice_number: str
    currency: str
    currency_amount_before_tax: Decimal
    currency_amount: Decimal
    currency_tax: Decimal
    amount: Decimal
    tax: Decimal
    label: str | None
    external_reference: str
    lines: list[SupplierInvoiceLine]
    accounting_status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    transaction_reference: dict[str, str] | None = None
    payment_status: str = "to_be_paid"
    archived_at: dt.datetime | None = None


class Record(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def external_reference(self) -> str: ...


RecordT = TypeVar("RecordT", bound=Record)


class Table(Generic[RecordT]):
    """Records by id, plus the ids in ascending order and an index on external_reference.

    Ids only grow, so appending keeps `ids` sorted; pages are found by bisection.
    """

    def __init__(self) -> None:
        self.records: dict[int, RecordT] = {}
        self.ids: list[int] = []
        self._by_external_reference: dict[str, set[int]] = {}
        self.version = 0
        self._sorted_cache: dict[str, tuple[int, list[tuple[object, int]]]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def get(self, record_id: int) -> RecordT | None:
        return self.records.get(record_id)

    def add(self, record: RecordT) -> None:
        self.records[record.id] = record
        if self.ids and record.id < self.ids[-1]:
            bisect.insort(self.ids, record.id)
        else:
            self.ids.append(record.id)
        self._by_external_reference.setdefault(record.external_reference, set()).add(record.id)
        self.version += 1

    def touched(self, record: RecordT, previous_external_reference: str) -> None:
        """Keeps indexes right after a record was changed in place."""
        if previous_external_reference != record.external_reference:
            self._by_external_reference.get(previous_external_reference, set()).discard(record.id)
            self._by_external_reference.setdefault(record.external_reference, set()).add(record.id)
        self.version += 1

    def remove(self, record: RecordT) -> None:
        del self.records[record.id]
        index = bisect.bisect_left(self.ids, record.id)
        del self.ids[index]
        self._by_external_reference.get(record.external_reference, set()).discard(record.id)
        self.version += 1

    def ids_with_external_reference(self, external_reference: str) -> list[int]:
        return sorted(self._by_external_reference.get(external_reference, ()))

    def sorted_keys(self, name: str, key: Callable[[RecordT], object]) -> list[tuple[object, int]]:
        """`(key, id)` pairs in ascending order, cached until the table changes."""
        cached = self._sorted_cache.get(name)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        pairs = sorted((key(record), record.id) for record in self.records.values())
        self._sorted_cache[name] = (self.version, pairs)
        return pairs

    def __iter__(self) -> Iterator[RecordT]:
        return (self.records[record_id] for record_id in self.ids)


Operation = Literal["insert", "update", "delete"]


@dataclass(slots=True, frozen=True)
class ChangeEvent:
    sequence: int
    record_id: int
    operation: Operation
    processed_at: dt.datetime
    updated_at: dt.datetime
    created_at: dt.datetime


class Changelog:
    """Append-only change events of one resource, in processed_at order."""

    def __init__(self) -> None:
        self.events: list[ChangeEvent] = []
        self._sequence = itertools.count(1)

    def record(
        self,
        record_id: int,
        operation: Operation,
        processed_at: dt.datetime,
        created_at: dt.datetime,
        updated_at: dt.datetime,
    ) -> None:
        if self.events and processed_at < self.events[-1].processed_at:
            processed_at = self.events[-1].processed_at
        self.events.append(
            ChangeEvent(
                next(self._sequence), record_id, operation, processed_at, updated_at, created_at
            )
        )

    def index_from_time(self, moment: dt.datetime) -> int:
        return bisect.bisect_left(self.events, moment, key=lambda event: event.processed_at)

    def index_after_sequence(self, sequence: int) -> int:
        return bisect.bisect_right(self.events, sequence, key=lambda event: event.sequence)


CHANGELOG_RESOURCES = (
    "customer_invoices",
    "products",
    "customers",
    "suppliers",
    "supplier_invoices",
    "quotes",
)


@dataclass
class Company:
    """One Pennylane company: everything a token can see."""

    id: int
    token: str
    name: str
    scopes: frozenset[str] | None
    invoices: Table[SalesDocument] = field(default_factory=Table)
    quotes: Table[SalesDocument] = field(default_factory=Table)
    commercial_documents: Table[SalesDocument] = field(default_factory=Table)
    products: Table[Product] = field(default_factory=Table)
    ledger_accounts: Table[LedgerAccount] = field(default_factory=Table)
    customers: Table[Customer] = field(default_factory=Table)
    suppliers: Table[Supplier] = field(default_factory=Table)
    file_attachments: Table[FileAttachment] = field(default_factory=Table)
    supplier_invoices: Table[SupplierInvoice] = field(default_factory=Table)
    changelogs: dict[str, Changelog] = field(
        default_factory=lambda: {name: Changelog() for name in CHANGELOG_RESOURCES}
    )
    # Successful creates and updates per (resource, external_reference): shows duplicate writes.
    writes: Counter[tuple[str, str]] = field(default_factory=Counter)
    invoice_sequence: int = 0
    quote_sequence: int = 0
    document_sequence: int = 0
    last_finalized_date: dt.date | None = None
    imported_attachment_ids: set[int] = field(default_factory=set)


class IdSequences:
    """Pennylane ids are global: two companies never share one, so a foreign id is a 404."""

    # Distinct starting points per resource make an id used on the wrong resource a visible 404.
    _BASES: dict[str, int] = {  # noqa: RUF012
        "customer_invoices": 100_000,
        "invoice_lines": 5_000_000,
        "products": 2_000,
        "customers": 30_000,
        "suppliers": 40_000,
        "ledger_accounts": 600_000,
        "quotes": 70_000,
        "commercial_documents": 80_000,
        "file_attachments": 90_000,
        "supplier_invoices": 300_000,
        "supplier_invoice_lines": 9_000_000,
    }

    def __init__(self) -> None:
        self._counters: dict[str, Iterator[int]] = {}

    def next(self, resource: str) -> int:
        counter = self._counters.get(resource)
        if counter is None:
            counter = itertools.count(self._BASES.get(resource, 1))
            self._counters[resource] = counter
        return next(counter)
