"""The `/_sandbox/` admin surface: only what Pennylane's public API cannot do.

No Pennylane token is needed; the company is picked by its token in the path.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .api.lines import build_line
from .config import FaultSettings
from .errors import ApiError, bad_request, not_found, schema_violation, unprocessable
from .money import ZERO, format_plain
from .ratelimit import max_in_window
from .seed import seed_customer, seed_invoice, seed_invoice_lines, seed_product
from .serializers import JSON, Serializer
from .spec import API_PREFIX, request_validator
from .store import Company, Product, SalesDocument

if TYPE_CHECKING:
    from .app import SandboxApp

DOCUMENT_TYPES = ("purchasing_order", "proforma", "shipping_order")


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}", parse_float=Decimal)
    except json.JSONDecodeError:
        raise bad_request("Malformed JSON body") from None
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object")
    return data


def _serializer(request: Request) -> Serializer:
    return Serializer(str(request.base_url).rstrip("/") + API_PREFIX)


@dataclass
class Admin:
    app: SandboxApp

    def _company(self, request: Request) -> Company:
        return self.app.sandbox.company(cast(str, request.path_params["token"]))

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "companies": len(self.app.sandbox.companies)})

    async def clock(self, request: Request) -> Response:
        clock = self.app.sandbox.clock
        return JSONResponse(
            {"now": clock.now().isoformat(), "offset_seconds": clock.offset.total_seconds()}
        )

    async def advance_clock(self, request: Request) -> Response:
        data = await _json(request)
        seconds = data.get("seconds")
        if not isinstance(seconds, int | Decimal) or seconds < 0:
            raise bad_request("seconds must be a non-negative number")
        self.app.sandbox.clock.advance(dt.timedelta(seconds=float(seconds)))
        return await self.clock(request)

    async def get_faults(self, request: Request) -> Response:
        faults = self.app.faults
        return JSONResponse(
            {
                "default": faults.default.as_dict(),
                "per_token": {
                    f"{token[:3]}…": settings.as_dict()
                    for token, settings in faults.per_token.items()
                },
                "injected": dict(faults.injected),
            }
        )

    async def set_faults(self, request: Request) -> Response:
        """Body: the FaultSettings fields, plus optional `token` (one company) and `seed`."""
        data = await _json(request)
        token = data.pop("token", None)
        seed = data.pop("seed", None)
        known = {spec_field.name for spec_field in fields(FaultSettings)}
        unknown = set(data) - known
        if unknown:
            raise bad_request(f"Unknown fault settings: {sorted(unknown)}")
        try:
            settings = FaultSettings(**{name: float(value) for name, value in data.items()})
        except (TypeError, ValueError) as error:
            raise bad_request(str(error)) from None
        if token is None:
            self.app.faults.default = settings
            self.app.faults.per_token.clear()
        else:
            self.app.sandbox.company(token)
            self.app.faults.per_token[token] = settings
        if isinstance(seed, int):
            self.app.faults.reseed(seed)
        return await self.get_faults(request)

    async def get_rate_limit(self, request: Request) -> Response:
        limiter = self.app.limiter
        return JSONResponse({"limit": limiter.limit, "window_seconds": limiter.window_seconds})

    async def set_rate_limit(self, request: Request) -> Response:
        data = await _json(request)
        try:
            self.app.limiter.configure(int(data["limit"]), float(data["window_seconds"]))
        except (KeyError, TypeError, ValueError) as error:
            raise bad_request(f"limit and window_seconds are required: {error}") from None
        return await self.get_rate_limit(request)

    async def add_company(self, request: Request) -> Response:
        data = await _json(request)
        token = data.get("token")
        scopes = data.get("scopes")
        if not isinstance(token, str):
            raise bad_request("token is required")
        try:
            company = self.app.sandbox.add_company(
                token, None if scopes is None else frozenset(scopes)
            )
        except ValueError as error:
            raise bad_request(str(error)) from None
        return JSONResponse({"id": company.id, "name": company.name}, status_code=201)

    async def set_scopes(self, request: Request) -> Response:
        company = self._company(request)
        scopes = (await _json(request)).get("scopes")
        company.scopes = None if scopes is None else frozenset(scopes)
        return JSONResponse({"scopes": None if scopes is None else sorted(scopes)})

    async def revoke_token(self, request: Request) -> Response:
        """The token stops working (401, still logged under it); with `new_token`, the same
        company answers to that one from now on, as when a user issues a new API token."""
        company = self._company(request)
        new_token = (await _json(request)).get("new_token")
        companies = self.app.sandbox.companies
        if new_token is not None and (
            not isinstance(new_token, str) or not new_token or new_token in companies
        ):
            raise bad_request("new_token must be a non-empty token no company has")
        del companies[company.token]
        self.app.revoked_tokens.add(company.token)
        if new_token is not None:
            company.token = new_token
            companies[new_token] = company
        return JSONResponse({"company_id": company.id, "token_revoked": True})

    async def state(self, request: Request) -> Response:
        company = self._company(request)
        return JSONResponse(
            {
                "company_id": company.id,
                "counts": {
                    "customer_invoices": len(company.invoices),
                    "quotes": len(company.quotes),
                    "commercial_documents": len(company.commercial_documents),
                    "products": len(company.products),
                    "ledger_accounts": len(company.ledger_accounts),
                    "customers": len(company.customers),
                    "suppliers": len(company.suppliers),
                    "file_attachments": len(company.file_attachments),
                    "supplier_invoices": len(company.supplier_invoices),
                },
                "changelog_events": {
                    name: len(log.events) for name, log in company.changelogs.items()
                },
            }
        )

    async def records(self, request: Request) -> Response:
        company = self._company(request)
        ser = _serializer(request)
        today = self.app.sandbox.today()
        renderers: dict[str, Callable[[], list[JSON]]] = {
            "customer_invoices": lambda: [
                {
                    **ser.customer_invoice(i, today),
                    "invoice_lines_items": [
                        ser.line(line, with_imputation_dates=True) for line in i.lines
                    ],
                }
                for i in company.invoices
            ],
            "quotes": lambda: [ser.quote(q) for q in company.quotes],
            "commercial_documents": lambda: [
                {
                    **ser.commercial_document(d),
                    "invoice_lines_items": [
                        ser.line(line, with_imputation_dates=False) for line in d.lines
                    ],
                }
                for d in company.commercial_documents
            ],
            "products": lambda: [ser.product(p) for p in company.products],
            "ledger_accounts": lambda: [ser.ledger_account(a) for a in company.ledger_accounts],
            "customers": lambda: [ser.customer(c, with_type=True) for c in company.customers],
            "suppliers": lambda: [ser.supplier(s) for s in company.suppliers],
            "supplier_invoices": lambda: [
                ser.supplier_invoice(s) for s in company.supplier_invoices
            ],
        }
        resource = cast(str, request.path_params["resource"])
        render = renderers.get(resource)
        if render is None:
            raise bad_request(f"Unknown resource {resource!r}; known: {sorted(renderers)}")
        return JSONResponse({"items": render()})

    async def product_quantities(self, request: Request) -> Response:
        """Per product, the summed line quantities of the company's finalized invoices, of its
        credit notes and of its draft invoices: what `records/customer_invoices` would give once
        aggregated, without sending every invoice (a large company's records run to hundreds of
        MB). Lines without a product are left out; quantities keep their sign."""
        company = self._company(request)
        sums: dict[int, dict[str, Decimal]] = {}
        for invoice in company.invoices:
            if invoice.draft:
                bucket = "drafts"
            elif invoice.is_credit_note:
                bucket = "credit_notes"
            else:
                bucket = "finalized_invoices"
            for line in invoice.lines:
                if line.product_id is None:
                    continue
                totals = sums.setdefault(
                    line.product_id,
                    dict.fromkeys(("finalized_invoices", "credit_notes", "drafts"), ZERO),
                )
                totals[bucket] += line.quantity
        return JSONResponse(
            {
                "items": [
                    {
                        "product_id": product_id,
                        **{name: format_plain(value) for name, value in totals.items()},
                    }
                    for product_id, totals in sorted(sums.items())
                ]
            }
        )

    async def writes(self, request: Request) -> Response:
        company = self._company(request)
        return JSONResponse(
            {
                "items": [
                    {"resource": resource, "external_reference": reference, "count": count}
                    for (resource, reference), count in sorted(company.writes.items())
                ]
            }
        )

    async def requests(self, request: Request) -> Response:
        token = cast(str, request.path_params["token"])
        if token not in self.app.revoked_tokens:
            token = self._company(request).token
        entries = self.app.request_log.entries(token)
        window = self.app.limiter.window_seconds
        return JSONResponse(
            {
                "limit": self.app.limiter.limit,
                "window_seconds": window,
                "max_received_in_any_window": max_in_window(
                    [entry.monotonic for entry in entries], window
                ),
                "max_admitted_in_any_window": max_in_window(
                    [entry.monotonic for entry in entries if entry.outcome != "rate_limited"],
                    window,
                ),
                "requests": [entry.as_dict() for entry in entries],
            }
        )

    async def clear_requests(self, request: Request) -> Response:
        self.app.request_log.clear(self._company(request).token)
        return Response(status_code=204)

    def _document_from(
        self, company: Company, data: dict[str, Any], existing: SalesDocument | None
    ) -> SalesDocument:
        sandbox = self.app.sandbox
        merged = {
            "customer_id": existing.customer_id if existing else None,
            "date": existing.date.isoformat() if existing else sandbox.today().isoformat(),
            **data,
        }
        merged.setdefault("deadline", merged["date"])
        if not isinstance(merged["customer_id"], int) or merged["customer_id"] not in (
            company.customers.records
        ):
            raise unprocessable(f"Customer {merged['customer_id']} not found")
        document_type = merged.get("document_type", "purchasing_order")
        if document_type not in DOCUMENT_TYPES:
            raise bad_request(f"document_type must be one of {DOCUMENT_TYPES}")
        quote_id = merged.get("quote_id")
        if quote_id is not None and quote_id not in company.quotes.records:
            raise unprocessable(f"Quote {quote_id} not found")
        if existing is None or "invoice_lines" in data:
            lines_form = {
                "date": merged["date"],
                "deadline": merged["deadline"],
                "customer_id": merged["customer_id"],
                "invoice_lines": merged.get("invoice_lines", []),
            }
            issue = request_validator("POST", "/quotes", "application/json").first_issue(lines_form)
            if issue is not None:
                raise schema_violation(issue)
            lines = [build_line(sandbox, company, line) for line in lines_form["invoice_lines"]]
            if not lines:
                raise unprocessable("invoice_lines can't be blank")
        else:
            lines = existing.lines
        now = sandbox.now()
        document = SalesDocument(
            id=existing.id if existing else sandbox.ids.next("commercial_documents"),
            kind="commercial_document",
            customer_id=merged["customer_id"],
            date=dt.date.fromisoformat(merged["date"]),
            deadline=dt.date.fromisoformat(merged["deadline"]),
            lines=lines,
            external_reference=merged.get("external_reference")
            or (existing.external_reference if existing else str(uuid.uuid4())),
            created_at=existing.created_at if existing else now,
            updated_at=now,
            label=merged.get("label", existing.label if existing else None),
            document_type=document_type,
            quote_id=quote_id,
            number=existing.number if existing else "",
        )
        return document

    async def create_document(self, request: Request) -> Response:
        """Body: customer_id, date, deadline?, document_type? (purchasing_order), quote_id?,
        label?, external_reference?, invoice_lines (the public API's line forms)."""
        company = self._company(request)
        document = self._document_from(company, await _json(request), None)
        company.document_sequence += 1
        prefix = {"purchasing_order": "BC", "proforma": "PF", "shipping_order": "BL"}
        document.number = f"{prefix[document.document_type]}{document.date.year}" + (
            f"{company.document_sequence:04d}"
        )
        company.commercial_documents.add(document)
        return JSONResponse(_serializer(request).commercial_document(document), status_code=201)

    def _existing_document(self, request: Request, company: Company) -> SalesDocument:
        document_id = cast(int, request.path_params["id"])
        document = company.commercial_documents.get(document_id)
        if document is None:
            raise not_found("CommercialDocument", document_id)
        return document

    async def update_document(self, request: Request) -> Response:
        company = self._company(request)
        existing = self._existing_document(request, company)
        document = self._document_from(company, await _json(request), existing)
        company.commercial_documents.records[document.id] = document
        company.commercial_documents.touched(document, existing.external_reference)
        return JSONResponse(_serializer(request).commercial_document(document))

    async def delete_document(self, request: Request) -> Response:
        company = self._company(request)
        company.commercial_documents.remove(self._existing_document(request, company))
        return Response(status_code=204)

    async def seed_invoices(self, request: Request) -> Response:
        """Bulk-creates finalized invoices, deterministic by `seed`, without API calls.

        Body (all optional): count (100), seed (0), min_lines (1), max_lines (20),
        customers (10), products (50), service_share (0.1: products booked on 706000),
        draft_share (0), credit_note_share (0), start_date (today - count/50 days).
        """
        company = self._company(request)
        sandbox = self.app.sandbox
        data = await _json(request)
        count = int(data.get("count", 100))
        min_lines, max_lines = int(data.get("min_lines", 1)), int(data.get("max_lines", 20))
        if count < 0 or not 1 <= min_lines <= max_lines:
            raise bad_request("count must be >= 0 and 1 <= min_lines <= max_lines")
        rng = random.Random(int(data.get("seed", 0)))
        now = sandbox.now()
        accounts = {account.number: account.id for account in company.ledger_accounts}
        customers = []
        for index in range(int(data.get("customers", 10))):
            customer = seed_customer(sandbox.ids.next("customers"), index + 1, now)
            company.customers.add(customer)
            sandbox.changed(company, "customers", customer, "insert", now, now)
            customers.append(customer.id)
        customers = customers or list(company.customers.ids)
        service_share = float(data.get("service_share", 0.1))
        products: list[Product] = []
        for index in range(int(data.get("products", 50))):
            account = accounts["706000"] if rng.random() < service_share else accounts["707000"]
            product = seed_product(sandbox.ids.next("products"), index + 1, rng, account, now)
            company.products.add(product)
            sandbox.changed(company, "products", product, "insert", now, now)
            products.append(product)
        products = products or list(company.products)
        if count and (not customers or not products):
            raise unprocessable("Seeding invoices needs at least one customer and one product")
        days = max(count // 50, 1)
        start = (
            dt.date.fromisoformat(data["start_date"])
            if "start_date" in data
            else sandbox.today() - dt.timedelta(days=days)
        )
        if company.last_finalized_date and start < company.last_finalized_date:
            start = company.last_finalized_date
        draft_share = float(data.get("draft_share", 0))
        credit_share = float(data.get("credit_note_share", 0))
        first_id = last_id = None
        line_total = 0
        for index in range(count):
            invoice_date = start + dt.timedelta(days=index * days // max(count, 1))
            line_count = rng.randint(min_lines, max_lines)
            line_ids = [sandbox.ids.next("invoice_lines") for _ in range(line_count)]
            draft = rng.random() < draft_share
            negative = rng.random() < credit_share
            lines = seed_invoice_lines(products, line_ids, rng, now, negative=negative)
            number = ""
            if not draft:
                company.invoice_sequence += 1
                number = f"F{invoice_date.year}{company.invoice_sequence:04d}"
                company.last_finalized_date = invoice_date
            invoice = seed_invoice(
                sandbox.ids.next("customer_invoices"),
                rng.choice(customers),
                lines,
                invoice_date,
                now,
                draft=draft,
                number=number,
            )
            company.invoices.add(invoice)
            sandbox.changed(company, "customer_invoices", invoice, "insert", now, now)
            first_id = first_id or invoice.id
            last_id = invoice.id
            line_total += line_count
        return JSONResponse(
            {"created": count, "first_id": first_id, "last_id": last_id, "lines": line_total},
            status_code=201,
        )

    async def file(self, request: Request) -> Response:
        attachment_id = cast(int, request.path_params["id"])
        for company in self.app.sandbox.companies.values():
            attachment = company.file_attachments.get(attachment_id)
            if attachment is not None:
                return Response(attachment.content, media_type=attachment.content_type)
        raise not_found("FileAttachment", attachment_id)


def _safe(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as error:
            return JSONResponse(error.body, status_code=error.status)

    return endpoint


def admin_routes(app: SandboxApp) -> list[Route]:
    admin = Admin(app)
    table: list[tuple[str, str, Callable[[Request], Awaitable[Response]]]] = [
        ("GET", "/_sandbox/health", admin.health),
        ("GET", "/_sandbox/clock", admin.clock),
        ("POST", "/_sandbox/clock/advance", admin.advance_clock),
        ("GET", "/_sandbox/faults", admin.get_faults),
        ("PUT", "/_sandbox/faults", admin.set_faults),
        ("GET", "/_sandbox/ratelimit", admin.get_rate_limit),
        ("PUT", "/_sandbox/ratelimit", admin.set_rate_limit),
        ("POST", "/_sandbox/companies", admin.add_company),
        ("GET", "/_sandbox/files/{id:int}", admin.file),
        ("PUT", "/_sandbox/{token}/scopes", admin.set_scopes),
        ("POST", "/_sandbox/{token}/revoke", admin.revoke_token),
        ("GET", "/_sandbox/{token}/state", admin.state),
        ("GET", "/_sandbox/{token}/records/{resource}", admin.records),
        ("GET", "/_sandbox/{token}/product_quantities", admin.product_quantities),
        ("GET", "/_sandbox/{token}/writes", admin.writes),
        ("GET", "/_sandbox/{token}/requests", admin.requests),
        ("DELETE", "/_sandbox/{token}/requests", admin.clear_requests),
        ("POST", "/_sandbox/{token}/commercial_documents", admin.create_document),
        ("PUT", "/_sandbox/{token}/commercial_documents/{id:int}", admin.update_document),
        ("DELETE", "/_sandbox/{token}/commercial_documents/{id:int}", admin.delete_document),
        ("POST", "/_sandbox/{token}/seed/customer_invoices", admin.seed_invoices),
    ]
    return [Route(path, _safe(handler), methods=[method]) for method, path, handler in table]
