"""Async client for the Pennylane Company API v2 (the parts Stockpit Sync uses).

One `PennylaneClient` per token and purpose; use it as an async context manager. Reads are paginated
async iterators that re-send filter and sort on every page (Pennylane cursors do not remember them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import SecretStr, TypeAdapter

from stockpit_pennylane.client.bodies import (
    CompanyCustomerCreate,
    CompanyCustomerUpdate,
    CustomerInvoiceCreate,
    IndividualCustomerCreate,
    IndividualCustomerUpdate,
    LinkCreditNote,
    ProductCreate,
    ProductUpdate,
    RequestBody,
    SupplierCreate,
    SupplierInvoiceImport,
    SupplierUpdate,
)
from stockpit_pennylane.client.errors import ChangelogExpired, Unprocessable
from stockpit_pennylane.client.filters import (
    COMMERCIAL_DOCUMENT_FILTERS,
    CUSTOMER_FILTERS,
    CUSTOMER_INVOICE_FILTERS,
    LEDGER_ACCOUNT_FILTERS,
    PRODUCT_FILTERS,
    QUOTE_FILTERS,
    SUPPLIER_FILTERS,
    SUPPLIER_INVOICE_FILTERS,
    Condition,
    Filter,
    FilterRules,
    check_sort,
    encode_filter,
)
from stockpit_pennylane.client.models import (
    ChangelogEvent,
    CommercialDocument,
    CompanyCustomer,
    Customer,
    CustomerInvoice,
    CustomerInvoiceLine,
    CustomerInvoicePage,
    CustomerInvoiceWithLines,
    DocumentLine,
    FileAttachment,
    IndividualCustomer,
    LedgerAccount,
    Me,
    Page,
    Product,
    Quote,
    Supplier,
    SupplierInvoice,
    SupplierInvoiceLine,
)
from stockpit_pennylane.client.pool import LeanTransport
from stockpit_pennylane.client.ratelimit import (
    PENNYLANE_RATE_LIMIT,
    TOKEN_WINDOWS,
    ClientBudget,
    RateLimit,
    share_to_requests,
    token_key,
)
from stockpit_pennylane.client.transport import (
    ClientMetrics,
    PennylaneTransport,
    RequestHook,
    RetryPolicy,
)

DEFAULT_BASE_URL = "https://app.pennylane.com/api/external/v2"
# NOTES §14: opt in to the 2026 behaviour (cursor pagination on ledger accounts, split scopes…).
API_CHANGES_HEADER = "X-Use-2026-API-Changes"
MAX_PAGE_SIZE = 100
MAX_CHANGELOG_PAGE_SIZE = 1000
# `include=invoice_lines` embeds at most this many lines per invoice.
INCLUDED_LINES_LIMIT = 20

COMMON_HEADERS = {
    "Accept": "application/json",
    API_CHANGES_HEADER: "true",
    "User-Agent": "stockpit-sync",
}

T = TypeVar("T")

_ID_SORT = frozenset({"id"})
_ID_DATE_SORT = frozenset({"id", "date"})
_LINE_SORT = frozenset({"id", "rank"})

_CUSTOMER_ADAPTER: TypeAdapter[CompanyCustomer | IndividualCustomer] = TypeAdapter(Customer)


class ChangelogResource(StrEnum):
    """Resources with a changelog. Commercial documents and ledger accounts have none."""

    CUSTOMER_INVOICES = "customer_invoices"
    SUPPLIER_INVOICES = "supplier_invoices"
    CUSTOMERS = "customers"
    SUPPLIERS = "suppliers"
    PRODUCTS = "products"
    QUOTES = "quotes"


def shared_http_client(
    *,
    timeout_s: float = 30.0,
    max_connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """One connection pool (one transport, one TLS context) for many `PennylaneClient`s, each
    passing it as `http=`: a process serving many tenants then holds one pool, not one per
    tenant. It carries no token and no base URL; the caller closes it after its clients.
    Its connections are kept by a `LeanConnectionPool` (see `stockpit_pennylane.client.pool`):
    a request's CPU then does not grow with the number of pooled connections. It keeps no
    cookie: one tenant's answer must not set what the next tenant's request sends."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=20)
    client = httpx.AsyncClient(
        headers=COMMON_HEADERS,
        timeout=httpx.Timeout(timeout_s),
        limits=limits,
        transport=transport if transport is not None else LeanTransport(limits),
    )
    client._cookies = _NoCookies()  # the property's setter would copy it into a plain jar
    return client


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing an answer sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def _rfc3339(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("changelog start dates must be timezone-aware")
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def server_date(values: Sequence[str]) -> dt.datetime | None:
    """An HTTP `Date` (IMF-fixdate, whole seconds) as an aware datetime, None if absent or
    unreadable. Of several values (a server adding its own beside the application's) the last
    one is the application's."""
    for value in reversed(values):
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    return None


def _chunks(ids: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class PennylaneClient:
    """Typed access to one Pennylane company through one API token.

    `budget_share` in (0, 1] is this client's part of the token's 25 requests / 5 s, shared with
    every other client of the same token in the process (e.g. poller 0.6, outbound 0.4).
    """

    def __init__(
        self,
        token: SecretStr | str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        budget_share: Decimal | float = Decimal(1),
        rate_limit: RateLimit = PENNYLANE_RATE_LIMIT,
        retry_policy: RetryPolicy | None = None,
        retry_ambiguous_writes: bool = False,
        timeout_s: float = 30.0,
        on_request: RequestHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> None:
        """`http`: a pool shared with other clients (see `shared_http_client`), which this
        client neither configures nor closes; its token then travels on each request.
        `before_send`: called before every attempt; what it raises stops the request."""
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        raw_token = secret.get_secret_value()
        if not raw_token:
            raise ValueError("an empty Pennylane token")
        self._token_fingerprint = token_key(raw_token)[:8]
        self.base_url = base_url.rstrip("/")
        self.metrics = ClientMetrics()
        authorization = {"Authorization": f"Bearer {raw_token}"}
        self._owns_http = http is None
        if http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url + "/",
                headers={**authorization, **COMMON_HEADERS},
                timeout=httpx.Timeout(timeout_s),
                transport=transport,
            )
        else:
            if transport is not None:
                raise ValueError("a shared pool already has its transport")
            self._http = http
        window = TOKEN_WINDOWS.window_for(raw_token, rate_limit)
        budget = ClientBudget(window, share_to_requests(rate_limit, budget_share))
        self._budget, self._rate_limit = budget, rate_limit
        self.requests_per_window = budget.requests_per_window
        self._transport = PennylaneTransport(
            self._http,
            budget,
            retry_policy=retry_policy or RetryPolicy(),
            retry_ambiguous_writes=retry_ambiguous_writes,
            metrics=self.metrics,
            on_request=on_request,
            url_prefix="" if self._owns_http else self.base_url + "/",
            headers=None if self._owns_http else authorization,
            before_send=before_send,
        )

    def __repr__(self) -> str:
        return (
            f"PennylaneClient(base_url={self.base_url!r}, token=sha256:{self._token_fingerprint}…)"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def set_budget_share(self, budget_share: Decimal | float) -> None:
        """Change this client's share of the token in place. Its log of sends is kept, so a
        smaller share holds the next sends until the log is within it: the client never sends
        more in a window than the larger of its old and new shares allow."""
        self._budget.requests_per_window = share_to_requests(self._rate_limit, budget_share)
        self.requests_per_window = self._budget.requests_per_window

    # --- plumbing -----------------------------------------------------------------------------

    async def _get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        response = await self._transport.request("GET", path, idempotent=True, params=params)
        return response.json()

    async def _write(
        self, method: str, path: str, body: RequestBody | None, *, idempotent: bool
    ) -> Any:
        payload = body.to_json_body() if body is not None else None
        response = await self._transport.request(method, path, idempotent=idempotent, json=payload)
        return response.json() if response.content else None

    async def _iter_pages(
        self,
        path: str,
        page_adapter: TypeAdapter[Any],
        *,
        filters: Sequence[Condition] = (),
        rules: FilterRules | None = None,
        sort: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        max_page_size: int = MAX_PAGE_SIZE,
        extra: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Any]:
        if not 1 <= page_size <= max_page_size:
            raise ValueError(f"page_size must be within 1..{max_page_size}")
        params: dict[str, str | int] = {"limit": page_size}
        encoded = encode_filter(filters, rules or {}, resource=path)
        if encoded is not None:
            params["filter"] = encoded
        if sort is not None:
            params["sort"] = sort
        if extra:
            params.update(extra)
        cursor: str | None = None
        while True:
            page_params = dict(params)
            if cursor is not None:
                page_params["cursor"] = cursor
            page = page_adapter.validate_python(await self._get(path, page_params))
            yield page
            if not page.has_more or page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def _iter_items(
        self,
        path: str,
        item_type: type[T],
        *,
        filters: Sequence[Condition] = (),
        rules: FilterRules | None = None,
        sort: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        max_page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[T]:
        adapter: TypeAdapter[Page[T]] = TypeAdapter(Page[item_type])  # type: ignore[valid-type]
        async for page in self._iter_pages(
            path,
            adapter,
            filters=filters,
            rules=rules,
            sort=sort,
            page_size=page_size,
            max_page_size=max_page_size,
        ):
            for item in page.items:
                yield item

    # --- identity -----------------------------------------------------------------------------

    async def get_me(self) -> Me:
        return Me.model_validate(await self._get("me"))

    # --- customer invoices and credit notes ---------------------------------------------------

    def iter_customer_invoices(
        self, *, filters: Sequence[Condition] = (), sort: str | None = None, page_size: int = 100
    ) -> AsyncIterator[CustomerInvoice]:
        """Invoices and credit notes, drafts included unless filtered out.

        Finalized only: `filters=[Filter.eq("draft", False)]`.
        """
        check_sort(sort, _ID_DATE_SORT, resource="customer_invoices")
        return self._iter_items(
            "customer_invoices",
            CustomerInvoice,
            filters=filters,
            rules=CUSTOMER_INVOICE_FILTERS,
            sort=sort,
            page_size=page_size,
        )

    async def get_customer_invoice(self, invoice_id: int) -> CustomerInvoice:
        return CustomerInvoice.model_validate(await self._get(f"customer_invoices/{invoice_id}"))

    def iter_customer_invoice_lines(
        self, invoice_id: int, *, sort: str | None = None
    ) -> AsyncIterator[CustomerInvoiceLine]:
        check_sort(sort, _LINE_SORT, resource="invoice_lines")
        return self._iter_items(
            f"customer_invoices/{invoice_id}/invoice_lines", CustomerInvoiceLine, sort=sort
        )

    async def _all_lines(self, invoice_id: int) -> tuple[CustomerInvoiceLine, ...]:
        return tuple([line async for line in self.iter_customer_invoice_lines(invoice_id)])

    async def iter_customer_invoice_pages_with_lines(
        self, *, filters: Sequence[Condition] = (), sort: str | None = None, page_size: int = 100
    ) -> AsyncIterator[list[CustomerInvoiceWithLines]]:
        """Pages of invoices with all their lines, via `include=invoice_lines`.

        One request serves up to `page_size` invoices with their first 20 lines each; only invoices
        with more lines (or missing from `included`, should Pennylane drop the experimental include)
        cost extra requests to the lines endpoint.
        """
        check_sort(sort, _ID_DATE_SORT, resource="customer_invoices")
        adapter: TypeAdapter[CustomerInvoicePage] = TypeAdapter(CustomerInvoicePage)
        async for page in self._iter_pages(
            "customer_invoices",
            adapter,
            filters=filters,
            rules=CUSTOMER_INVOICE_FILTERS,
            sort=sort,
            page_size=page_size,
            extra={"include": "invoice_lines"},
        ):
            yield await self._complete_lines(page)

    async def _complete_lines(self, page: CustomerInvoicePage) -> list[CustomerInvoiceWithLines]:
        included = page.included.invoice_lines if page.included is not None else {}
        complete: dict[int, tuple[CustomerInvoiceLine, ...]] = {}
        incomplete: list[int] = []
        for invoice in page.items:
            embedded = included.get(str(invoice.id))
            if embedded is None or embedded.has_more:
                incomplete.append(invoice.id)
            else:
                complete[invoice.id] = tuple(embedded.items)
        if incomplete:
            fetched = await asyncio.gather(*(self._all_lines(i) for i in incomplete))
            complete.update(zip(incomplete, fetched, strict=True))
        return [CustomerInvoiceWithLines(inv, complete[inv.id]) for inv in page.items]

    async def iter_customer_invoices_with_lines(
        self, *, filters: Sequence[Condition] = (), sort: str | None = None, page_size: int = 100
    ) -> AsyncIterator[CustomerInvoiceWithLines]:
        async for page in self.iter_customer_invoice_pages_with_lines(
            filters=filters, sort=sort, page_size=page_size
        ):
            for invoice in page:
                yield invoice

    async def fetch_customer_invoices_with_lines(
        self, invoice_ids: Iterable[int]
    ) -> list[CustomerInvoiceWithLines]:
        """The given invoices with all their lines, 100 per request (`filter id in [...]`).

        Ids Pennylane does not return (deleted, or another company's) are simply absent.
        """
        unique_ids = sorted(set(invoice_ids))
        found: list[CustomerInvoiceWithLines] = []
        for chunk in _chunks(unique_ids, MAX_PAGE_SIZE):
            async for page in self.iter_customer_invoice_pages_with_lines(
                filters=[Filter.in_("id", chunk)], sort="id", page_size=MAX_PAGE_SIZE
            ):
                found.extend(page)
        return found

    async def find_customer_invoice_by_external_reference(
        self, external_reference: str
    ) -> CustomerInvoice | None:
        async for invoice in self.iter_customer_invoices(
            filters=[Filter.eq("external_reference", external_reference)], page_size=1
        ):
            return invoice
        return None

    async def create_customer_invoice(self, body: CustomerInvoiceCreate) -> CustomerInvoice:
        """Not idempotent: on AmbiguousWriteError, look it up by external_reference first."""
        data = await self._write("POST", "customer_invoices", body, idempotent=False)
        return CustomerInvoice.model_validate(data)

    async def finalize_customer_invoice(self, invoice_id: int) -> CustomerInvoice:
        data = await self._write(
            "PUT", f"customer_invoices/{invoice_id}/finalize", None, idempotent=False
        )
        return CustomerInvoice.model_validate(data)

    async def link_credit_note(self, invoice_id: int, credit_note_id: int) -> CustomerInvoice:
        data = await self._write(
            "POST",
            f"customer_invoices/{invoice_id}/link_credit_note",
            LinkCreditNote(credit_note_id=credit_note_id),
            idempotent=False,
        )
        return CustomerInvoice.model_validate(data)

    # --- commercial documents and quotes --------------------------------------------------------

    def iter_commercial_documents(
        self, *, filters: Sequence[Condition] = (), sort: str | None = None, page_size: int = 100
    ) -> AsyncIterator[CommercialDocument]:
        """No changelog and no updated_at filter exist: page `sort="-id"` for new ones."""
        check_sort(sort, _ID_SORT, resource="commercial_documents")
        return self._iter_items(
            "commercial_documents",
            CommercialDocument,
            filters=filters,
            rules=COMMERCIAL_DOCUMENT_FILTERS,
            sort=sort,
            page_size=page_size,
        )

    async def get_commercial_document(self, document_id: int) -> CommercialDocument:
        data = await self._get(f"commercial_documents/{document_id}")
        return CommercialDocument.model_validate(data)

    def iter_commercial_document_lines(self, document_id: int) -> AsyncIterator[DocumentLine]:
        return self._iter_items(f"commercial_documents/{document_id}/invoice_lines", DocumentLine)

    def iter_quotes(
        self, *, filters: Sequence[Condition] = (), sort: str | None = None, page_size: int = 100
    ) -> AsyncIterator[Quote]:
        check_sort(sort, _ID_SORT, resource="quotes")
        return self._iter_items(
            "quotes", Quote, filters=filters, rules=QUOTE_FILTERS, sort=sort, page_size=page_size
        )

    async def get_quote(self, quote_id: int) -> Quote:
        return Quote.model_validate(await self._get(f"quotes/{quote_id}"))

    def iter_quote_lines(self, quote_id: int) -> AsyncIterator[DocumentLine]:
        return self._iter_items(f"quotes/{quote_id}/invoice_lines", DocumentLine)

    # --- products and ledger accounts -------------------------------------------------------------

    def iter_products(
        self, *, filters: Sequence[Condition] = (), sort: str | None = None, page_size: int = 100
    ) -> AsyncIterator[Product]:
        check_sort(sort, _ID_SORT, resource="products")
        return self._iter_items(
            "products",
            Product,
            filters=filters,
            rules=PRODUCT_FILTERS,
            sort=sort,
            page_size=page_size,
        )

    async def get_product(self, product_id: int) -> Product:
        return Product.model_validate(await self._get(f"products/{product_id}"))

    async def find_product_by_external_reference(self, external_reference: str) -> Product | None:
        async for product in self.iter_products(
            filters=[Filter.eq("external_reference", external_reference)], page_size=1
        ):
            return product
        return None

    async def create_product(self, body: ProductCreate) -> Product:
        """Not idempotent: on AmbiguousWriteError, look it up by external_reference first."""
        return Product.model_validate(await self._write("POST", "products", body, idempotent=False))

    async def update_product(self, product_id: int, body: ProductUpdate) -> Product:
        data = await self._write("PUT", f"products/{product_id}", body, idempotent=True)
        return Product.model_validate(data)

    def iter_ledger_accounts(
        self, *, filters: Sequence[Condition] = (), sort: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[LedgerAccount]:
        check_sort(sort, _ID_SORT, resource="ledger_accounts")
        return self._iter_items(
            "ledger_accounts",
            LedgerAccount,
            filters=filters,
            rules=LEDGER_ACCOUNT_FILTERS,
            sort=sort,
            page_size=page_size,
            max_page_size=1000,
        )

    async def get_ledger_account(self, account_id: int) -> LedgerAccount:
        return LedgerAccount.model_validate(await self._get(f"ledger_accounts/{account_id}"))

    # --- customers ------------------------------------------------------------------------------

    def iter_customers(
        self, *, filters: Sequence[Condition] = (), sort: str | None = None, page_size: int = 100
    ) -> AsyncIterator[CompanyCustomer | IndividualCustomer]:
        check_sort(sort, _ID_SORT, resource="customers")
        return self._iter_items(
            "customers",
            Customer,  # type: ignore[arg-type]
            filters=filters,
            rules=CUSTOMER_FILTERS,
            sort=sort,
            page_size=page_size,
        )

    async def get_customer(self, customer_id: int) -> CompanyCustomer | IndividualCustomer:
        return _CUSTOMER_ADAPTER.validate_python(await self._get(f"customers/{customer_id}"))

    async def find_customer_by_external_reference(
        self, external_reference: str
    ) -> CompanyCustomer | IndividualCustomer | None:
        async for customer in self.iter_customers(
            filters=[Filter.eq("external_reference", external_reference)], page_size=1
        ):
            return customer
        return None

    async def create_company_customer(self, body: CompanyCustomerCreate) -> CompanyCustomer:
        """Not idempotent (a duplicate may 409): on AmbiguousWriteError, look it up first."""
        data = await self._write("POST", "company_customers", body, idempotent=False)
        return _typed_customer(CompanyCustomer, data)

    async def update_company_customer(
        self, customer_id: int, body: CompanyCustomerUpdate
    ) -> CompanyCustomer:
        data = await self._write("PUT", f"company_customers/{customer_id}", body, idempotent=True)
        return _typed_customer(CompanyCustomer, data)

    async def create_individual_customer(
        self, body: IndividualCustomerCreate
    ) -> IndividualCustomer:
        """Not idempotent (a duplicate may 409): on AmbiguousWriteError, look it up first."""
        data = await self._write("POST", "individual_customers", body, idempotent=False)
        return _typed_customer(IndividualCustomer, data)

    async def update_individual_customer(
        self, customer_id: int, body: IndividualCustomerUpdate
    ) -> IndividualCustomer:
        data = await self._write(
            "PUT", f"individual_customers/{customer_id}", body, idempotent=True
        )
        return _typed_customer(IndividualCustomer, data)

    # --- suppliers and supplier invoices --------------------------------------------------------

    def iter_suppliers(
        self, *, filters: Sequence[Condition] = (), sort: str | None = None, page_size: int = 100
    ) -> AsyncIterator[Supplier]:
        check_sort(sort, _ID_SORT, resource="suppliers")
        return self._iter_items(
            "suppliers",
            Supplier,
            filters=filters,
            rules=SUPPLIER_FILTERS,
            sort=sort,
            page_size=page_size,
        )

    async def get_supplier(self, supplier_id: int) -> Supplier:
        return Supplier.model_validate(await self._get(f"suppliers/{supplier_id}"))

    async def find_supplier_by_external_reference(self, external_reference: str) -> Supplier | None:
        async for supplier in self.iter_suppliers(
            filters=[Filter.eq("external_reference", external_reference)], page_size=1
        ):
            return supplier
        return None

    async def create_supplier(self, body: SupplierCreate) -> Supplier:
        """Not idempotent (a duplicate may 409): on AmbiguousWriteError, look it up first."""
        return Supplier.model_validate(
            await self._write("POST", "suppliers", body, idempotent=False)
        )

    async def update_supplier(self, supplier_id: int, body: SupplierUpdate) -> Supplier:
        data = await self._write("PUT", f"suppliers/{supplier_id}", body, idempotent=True)
        return Supplier.model_validate(data)

    def iter_supplier_invoices(
        self, *, filters: Sequence[Condition] = (), sort: str | None = None, page_size: int = 100
    ) -> AsyncIterator[SupplierInvoice]:
        check_sort(sort, _ID_DATE_SORT, resource="supplier_invoices")
        return self._iter_items(
            "supplier_invoices",
            SupplierInvoice,
            filters=filters,
            rules=SUPPLIER_INVOICE_FILTERS,
            sort=sort,
            page_size=page_size,
        )

    async def get_supplier_invoice(self, invoice_id: int) -> SupplierInvoice:
        return SupplierInvoice.model_validate(await self._get(f"supplier_invoices/{invoice_id}"))

    def iter_supplier_invoice_lines(self, invoice_id: int) -> AsyncIterator[SupplierInvoiceLine]:
        return self._iter_items(
            f"supplier_invoices/{invoice_id}/invoice_lines", SupplierInvoiceLine
        )

    async def find_supplier_invoice_by_external_reference(
        self, external_reference: str
    ) -> SupplierInvoice | None:
        async for invoice in self.iter_supplier_invoices(
            filters=[Filter.eq("external_reference", external_reference)], page_size=1
        ):
            return invoice
        return None

    async def upload_file_attachment(
        self, content: bytes, filename: str, *, content_type: str = "application/pdf"
    ) -> FileAttachment:
        """Multipart upload; an ambiguous failure only leaves an orphan file, so it is retried."""
        response = await self._transport.request(
            "POST",
            "file_attachments",
            idempotent=True,
            files={"file": (filename, content, content_type)},
            data={"filename": filename},
        )
        return FileAttachment.model_validate(response.json())

    async def import_supplier_invoice(self, body: SupplierInvoiceImport) -> SupplierInvoice:
        """Re-importing the same file attachment is a 409 (Conflict), Pennylane's only dedupe."""
        data = await self._write("POST", "supplier_invoices/import", body, idempotent=False)
        return SupplierInvoice.model_validate(data)

    # --- changelogs -----------------------------------------------------------------------------

    async def iter_changelog_pages(
        self,
        resource: ChangelogResource,
        *,
        since: dt.datetime | None,
        page_size: int = MAX_CHANGELOG_PAGE_SIZE,
    ) -> AsyncIterator[list[ChangelogEvent]]:
        """Changes oldest first (by `processed_at`), starting at the stored watermark `since`.

        `since=None` reads from the oldest retained change (about 4 weeks back): only right after a
        full scan. Raises ChangelogExpired when `since` is older than the retention: the caller must
        then re-scan the resource in full. Events at exactly `since` come again (Pennylane's
        start_date is inclusive) and a record can appear several times: the caller dedupes, persists
        the greatest `processed_at` it has handled after each page, and fetches the records itself
        (events carry ids only; a `delete` cannot be fetched).
        """
        if not 1 <= page_size <= MAX_CHANGELOG_PAGE_SIZE:
            raise ValueError(f"page_size must be within 1..{MAX_CHANGELOG_PAGE_SIZE}")
        path = f"changelogs/{resource.value}"
        adapter: TypeAdapter[Page[ChangelogEvent]] = TypeAdapter(Page[ChangelogEvent])
        # Pennylane refuses start_date with a cursor (400): start_date on the first call only.
        params: dict[str, str | int] = {"limit": page_size}
        if since is not None:
            params["start_date"] = _rfc3339(since)
        try:
            page = adapter.validate_python(await self._get(path, params))
        except Unprocessable as exc:
            if since is None:
                raise
            raise ChangelogExpired(
                exc.message, start_date=since, status=exc.status, method=exc.method, path=exc.path
            ) from None
        while True:
            yield page.items
            if not page.has_more or page.next_cursor is None:
                return
            page = adapter.validate_python(
                await self._get(path, {"limit": page_size, "cursor": page.next_cursor})
            )

    async def changelog_now(self, resource: ChangelogResource) -> dt.datetime:
        """Pennylane's own time, from the `Date` header of a one-event read of `resource`'s
        changelog (the scope its changelog needs anyway), so that a changelog start derived from
        it does not depend on our clock. Our clock when the answer carries no usable `Date`."""
        response = await self._transport.request(
            "GET", f"changelogs/{resource.value}", idempotent=True, params={"limit": 1}
        )
        return server_date(response.headers.get_list("date")) or dt.datetime.now(dt.UTC)

    async def iter_changelog(
        self,
        resource: ChangelogResource,
        *,
        since: dt.datetime | None,
        page_size: int = MAX_CHANGELOG_PAGE_SIZE,
    ) -> AsyncIterator[ChangelogEvent]:
        async for events in self.iter_changelog_pages(resource, since=since, page_size=page_size):
            for event in events:
                yield event


CustomerT = TypeVar("CustomerT", CompanyCustomer, IndividualCustomer)


def _typed_customer(model: type[CustomerT], data: Any) -> CustomerT:
    """The company_/individual_customers endpoints answer without `customer_type` (the list and
    get-by-id of /customers carry it): the endpoint itself says which kind it is."""
    kind = "company" if model is CompanyCustomer else "individual"
    return model.model_validate({**data, "customer_type": kind})
