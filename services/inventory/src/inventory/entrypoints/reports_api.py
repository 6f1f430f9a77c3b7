"""What the shop owner reads and brings: the sync report (problems, sync runs, status), the
stock count import and the stock export.

Lists are newest first and paginated as every list of the API (`stockpit_runtime.pagination`):
`limit` and `cursor`, the next page in a `Link: <…>; rel="next"` header.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from stockpit_runtime.auth import Problem, Scope, SecureRouter
from stockpit_runtime.pagination import Cursor, Limit, decode_cursor, link_next

from inventory.domain.commands import AcknowledgeProblem, ImportCount
from inventory.domain.report import ProblemView
from inventory.domain.stock_count import MAX_COUNT_BYTES, CountLine, CountRefused
from inventory.entrypoints.api import Tenant, _read, _run
from inventory.entrypoints.schemas import DocumentOut
from inventory.service_layer import counts, problems, views
from inventory.service_layer.unit_of_work import UnitOfWork
from inventory.service_layer.views import SyncRunView, TenantStatus

router = SecureRouter()
READ, WRITE = Scope.STOCK_READ, Scope.STOCK_WRITE

ProblemKinds = Annotated[list[str], Query(max_length=10)]


def _aware(moment: datetime | None) -> datetime | None:
    """A time given without a zone ("2026-11-30", "2026-11-30T10:00") is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


# -- response models -----------------------------------------------------------------------


class ProblemOut(BaseModel):
    problem_id: int
    kind: str
    reported_at: datetime
    summary: str = Field(description="one sentence: what, which product, where, which document")
    reason: str
    hint: str = Field(description="what the user can do about it")
    subject_kind: str
    subject_id: str
    product_id: str | None
    product_name: str | None
    sku: str | None
    location_id: str | None
    location_name: str | None
    document: DocumentOut | None
    acknowledged_at: datetime | None
    occurrences: int = Field(
        description="times it happened while open (negative stock: the document named is the "
        "latest that pushed it down)"
    )

    @classmethod
    def of(cls, view: ProblemView) -> ProblemOut:
        return cls(
            problem_id=view.problem_id,
            kind=view.kind,
            reported_at=view.reported_at,
            summary=view.summary,
            reason=view.reason,
            hint=view.hint,
            subject_kind=view.subject_kind,
            subject_id=view.subject_id,
            product_id=view.product_id,
            product_name=view.product_name,
            sku=view.sku,
            location_id=view.location_id,
            location_name=view.location_name,
            document=DocumentOut.of(view.document) if view.document else None,
            acknowledged_at=view.acknowledged_at,
            occurrences=view.occurrences,
        )


class SyncRunOut(BaseModel):
    run_id: int
    started_at: datetime
    finished_at: datetime
    duration_s: float
    streams: list[str]
    documents: int = Field(description="documents the poller read and passed on in this run")
    outcome: str
    error_kind: str | None
    error: str | None

    @classmethod
    def of(cls, run: SyncRunView) -> SyncRunOut:
        return cls(
            run_id=run.run_id,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_s=run.duration_s,
            streams=run.streams,
            documents=run.documents_published,
            outcome=run.outcome,
            error_kind=run.error_kind,
            error=run.error,
        )


class TenantStatusOut(BaseModel):
    tenant_id: str
    open_problems: int
    open_problems_by_kind: dict[str, int]
    needs_new_token: bool
    last_sync: SyncRunOut | None

    @classmethod
    def of(cls, tenant_id: str, status: TenantStatus) -> TenantStatusOut:
        return cls(
            tenant_id=tenant_id,
            open_problems=status.open_problems,
            open_problems_by_kind=status.open_problems_by_kind,
            needs_new_token=status.needs_new_token,
            last_sync=SyncRunOut.of(status.last_sync) if status.last_sync else None,
        )


class ReportOut(BaseModel):
    status: TenantStatusOut
    sync_runs: list[SyncRunOut] = Field(description="the latest runs (`runs` of them)")
    problems: list[ProblemOut] = Field(
        description='a page of problems; the next one in the `Link: <…>; rel="next"` header'
    )


class AcknowledgedOut(BaseModel):
    problem_id: int
    acknowledged: bool
    was_open: bool


class CountLineOut(BaseModel):
    line: int
    product_id: str
    product_name: str
    sku: str | None
    location_id: str
    location_name: str
    current_real: Decimal
    counted: Decimal
    difference: Decimal

    @classmethod
    def of(cls, line: CountLine) -> CountLineOut:
        return cls(
            line=line.line,
            product_id=str(line.product_id),
            product_name=line.product_name,
            sku=line.sku,
            location_id=str(line.location_id),
            location_name=line.location_name,
            current_real=line.current_real,
            counted=line.counted,
            difference=line.difference,
        )


class CountOut(BaseModel):
    applied: bool
    count_id: str | None = Field(description="the ledger's cause reference is count:{count_id}")
    rows: int
    changed: int = Field(description="rows whose counted figure differs from the real stock")
    lines: list[CountLineOut]


class BadRowOut(BaseModel):
    line: int = Field(description="the file's line number (1 is the header; 0 the whole file)")
    reason: str


class CountRefusedOut(BaseModel):
    detail: str
    bad_rows: list[BadRowOut]


# -- the report ----------------------------------------------------------------------------


def _after(cursor: str | None) -> int | None:
    """The id a page starts below, from a cursor this API gave."""
    key = decode_cursor(cursor, 1)
    if key is None:
        return None
    if not isinstance(key[0], int) or key[0] < 1:
        raise HTTPException(422, "invalid cursor: pass the one a previous page gave")
    return key[0]


def _next(request: Request, response: Response, after: int | None) -> None:
    link_next(request, response, None if after is None else (after,))


@router.get(
    "/tenants/{tenant_id}/problems",
    scope=READ,
    response_model=list[ProblemOut],
    tags=["report"],
)
async def list_problems(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    kind: ProblemKinds = [],  # noqa: B006 - FastAPI copies query defaults
    since: datetime | None = None,
    until: datetime | None = None,
    open_only: bool = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[ProblemOut]:
    """Problems of the tenant's sync, newest first, with the document's number and date, the
    product's name and SKU, the location, and a hint of what to do."""
    after = _after(cursor)

    async def query(uow: UnitOfWork) -> views.Page[ProblemView]:
        return await views.problem_page(
            uow,
            kinds=kind,
            since=_aware(since),
            until=_aware(until),
            open_only=open_only,
            after=after,
            limit=limit,
        )

    page = await _read(request, tenant_id, query)
    _next(request, response, page.next_after)
    return [ProblemOut.of(p) for p in page.items]


@router.post(
    "/tenants/{tenant_id}/problems/{problem_id}/acknowledge",
    scope=WRITE,
    response_model=AcknowledgedOut,
    tags=["report"],
)
async def acknowledge_problem(
    tenant_id: Tenant, problem_id: Annotated[int, Path(ge=1, le=2**63 - 1)], request: Request
) -> Response:
    """Mark a problem as dealt with: it stays in the report, no longer counted as open."""
    was_open = await _run(
        request, tenant_id, problems.acknowledge_problem, AcknowledgeProblem(problem_id)
    )
    if was_open is None:
        return JSONResponse({"detail": f"problem {problem_id} not found"}, status_code=404)
    body = AcknowledgedOut(problem_id=problem_id, acknowledged=True, was_open=was_open)
    return JSONResponse(body.model_dump(mode="json"))


@router.get(
    "/tenants/{tenant_id}/sync-runs",
    scope=READ,
    response_model=list[SyncRunOut],
    tags=["report"],
)
async def list_sync_runs(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> list[SyncRunOut]:
    """Each sync run of the tenant as the poller reported it: when, streams read, documents,
    duration and outcome; newest first."""
    after = _after(cursor)

    async def query(uow: UnitOfWork) -> views.Page[SyncRunView]:
        return await views.sync_run_page(
            uow, since=_aware(since), until=_aware(until), after=after, limit=limit
        )

    page = await _read(request, tenant_id, query)
    _next(request, response, page.next_after)
    return [SyncRunOut.of(r) for r in page.items]


@router.get(
    "/tenants/{tenant_id}/status", scope=READ, response_model=TenantStatusOut, tags=["report"]
)
async def tenant_status(tenant_id: Tenant, request: Request) -> TenantStatusOut:
    """Open problems (by kind), the last sync run, and whether Pennylane needs a new token."""

    async def query(uow: UnitOfWork) -> TenantStatusOut:
        return TenantStatusOut.of(tenant_id, await views.tenant_status(uow))

    return await _read(request, tenant_id, query)


@router.get("/tenants/{tenant_id}/report", scope=READ, response_model=ReportOut, tags=["report"])
async def sync_report(
    tenant_id: Tenant,
    request: Request,
    response: Response,
    kind: ProblemKinds = [],  # noqa: B006 - FastAPI copies query defaults
    since: datetime | None = None,
    until: datetime | None = None,
    open_only: bool = False,
    limit: Limit = 100,
    cursor: Cursor = None,
    runs: Annotated[int, Query(ge=1, le=views.MAX_PAGE)] = 20,
) -> ReportOut:
    """The whole report in one read: status, the latest sync runs in the date range, and a
    page of problems (filters, `limit` and `cursor` as in `/problems`; the next page of
    problems in the `Link` header)."""
    after = _after(cursor)

    async def query(uow: UnitOfWork) -> tuple[ReportOut, int | None]:
        status = await views.tenant_status(uow)
        run_page = await views.sync_run_page(
            uow, since=_aware(since), until=_aware(until), limit=runs
        )
        problem_page = await views.problem_page(
            uow,
            kinds=kind,
            since=_aware(since),
            until=_aware(until),
            open_only=open_only,
            after=after,
            limit=limit,
        )
        report = ReportOut(
            status=TenantStatusOut.of(tenant_id, status),
            sync_runs=[SyncRunOut.of(r) for r in run_page.items],
            problems=[ProblemOut.of(p) for p in problem_page.items],
        )
        return report, problem_page.next_after

    report, next_after = await _read(request, tenant_id, query)
    _next(request, response, next_after)
    return report


# -- stock count import --------------------------------------------------------------------


@router.post(
    "/tenants/{tenant_id}/counts",
    scope=WRITE,
    max_body_bytes=MAX_COUNT_BYTES,  # a count of 20,000 rows passes the service's global cap
    response_model=CountOut,
    responses={
        201: {"model": CountOut, "description": "applied"},
        413: {"model": Problem, "description": f"the file is larger than {MAX_COUNT_BYTES} bytes"},
        415: {
            "model": Problem,
            "description": "the body is not the CSV file itself (e.g. a multipart form)",
        },
        422: {
            # a bad row refuses the file (every one listed); bad parameters answer as anywhere
            "model": CountRefusedOut | Problem,
            "description": "refused whole with every bad row listed, or malformed parameters",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    tags=["stock"],
)
async def import_count(
    tenant_id: Tenant,
    request: Request,
    apply: bool = False,
    note: Annotated[str, Query(max_length=500)] = "stock count",
) -> Response:
    """A stock count as CSV in the body (`sku` or `product_id`, `location`, `counted`; `;` or
    `,` separated; decimal commas accepted). Without `apply`, a preview: product, location,
    current real, counted, difference. With `apply=true`, each difference becomes a ledger entry
    of cause "count", all in one transaction. Any bad row refuses the whole file (422, every
    bad row listed with its line number) and nothing is applied."""
    if request.headers.get("content-type", "").startswith("multipart/"):
        return JSONResponse(
            {"detail": "send the CSV file itself as the body (Content-Type: text/csv)"},
            status_code=415,
        )
    data = await request.body()  # at most MAX_COUNT_BYTES: the body cap answered 413 before
    try:
        result = await _run(
            request,
            tenant_id,
            counts.import_count,
            ImportCount(data, apply=apply, note=note),
        )
    except CountRefused as refused:
        body = CountRefusedOut(
            detail=str(refused),
            bad_rows=[BadRowOut(line=row.line, reason=row.reason) for row in refused.rows],
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=422)
    out = CountOut(
        applied=result.count_id is not None,
        count_id=str(result.count_id) if result.count_id else None,
        rows=len(result.lines),
        changed=result.changed,
        lines=[CountLineOut.of(line) for line in result.lines],
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if apply else 200)


# -- stock export --------------------------------------------------------------------------

STOCK_CSV_COLUMNS = (
    "product_name",
    "sku",
    "location",
    "real",
    "reserved",
    "available",
    "incoming",
    "product_id",
    "location_id",
)


def _figure(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


@router.get(
    "/tenants/{tenant_id}/stock.csv",
    scope=READ,
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
    tags=["stock"],
)
async def stock_csv(
    tenant_id: Tenant,
    request: Request,
    separator: Literal["comma", "semicolon"] = "comma",
) -> Response:
    """Stock per product and location as CSV: product name, SKU, location, real, reserved,
    available, incoming (and the ids). `separator=semicolon` for French spreadsheets."""
    lines = await _read(request, tenant_id, views.stock_lines)
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";" if separator == "semicolon" else ",")
    writer.writerow(STOCK_CSV_COLUMNS)
    for line in lines:
        writer.writerow(
            (
                line.product_name or "",
                line.sku or "",
                line.location_name or "",
                _figure(line.real),
                _figure(line.reserved),
                _figure(line.available),
                _figure(line.incoming),
                line.product_id,
                line.location_id,
            )
        )
    return Response(
        text.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="stock-{tenant_id}.csv"'},
    )
