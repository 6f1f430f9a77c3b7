"""Ledger accounts: `/ledger_accounts`, and opening one by number for a third party."""

from __future__ import annotations

from starlette.responses import Response

from .. import rules
from ..rules import FilterField
from ..store import LedgerAccount
from .common import Ctx, int_field, list_table, ok, operation, owned, page_body, str_field

LEDGER_FIELDS: dict[str, FilterField[LedgerAccount]] = {
    "id": int_field(lambda r: r.id),
    "number": str_field(lambda r: r.number, frozenset({"start_with", "eq", "in"})),
    "enabled": FilterField("bool", frozenset({"eq"}), lambda r: r.enabled),
}


@operation("GET", "/ledger_accounts", "ledger_accounts")
async def list_ledger_accounts(ctx: Ctx) -> Response:
    page = list_table(
        ctx, ctx.company.ledger_accounts, LEDGER_FIELDS, max_limit=rules.CHANGELOG_MAX_LIMIT
    )
    body = page_body(page, ctx.ser.ledger_account)
    # Cursor mode (the 2026 behaviour): the old page-number keys are present but null.
    return ok(
        {"total_pages": None, "current_page": None, "total_items": None, "per_page": None, **body}
    )


@operation("GET", "/ledger_accounts/{id}", "ledger_accounts")
async def get_ledger_account(ctx: Ctx) -> Response:
    account = owned(ctx.company.ledger_accounts, ctx.path_id(), "LedgerAccount")
    return ok(ctx.ser.ledger_account(account))


def ledger_account_by_number(ctx: Ctx, number: str, label: str) -> int:
    """The id of the account with this number, opening it (as Pennylane does) if it is new."""
    for account in ctx.company.ledger_accounts:
        if account.number == number:
            return account.id
    now = ctx.now
    account = LedgerAccount(
        id=ctx.sandbox.ids.next("ledger_accounts"),
        number=number,
        label=label,
        vat_rate="",
        country_alpha2="FR",
        enabled=True,
        letterable=number.startswith(("401", "411")),
        created_at=now,
        updated_at=now,
    )
    ctx.company.ledger_accounts.add(account)
    return account.id
