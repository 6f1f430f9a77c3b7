"""The whole sandbox: companies by token, the shared clock, global id sequences."""

from __future__ import annotations

import datetime as dt
import hashlib

from .config import SandboxConfig
from .errors import error_status
from .seed import FRENCH_CHART, chart_of_accounts
from .store import Clock, Company, IdSequences, Operation, Record

# Every scope a full-access company token can hold, as `/me` lists them.
ALL_SCOPES = (
    "customer_invoices:all",
    "supplier_invoices:all",
    "products:all",
    "customers:all",
    "suppliers:all",
    "commercial_documents:all",
    "quotes:all",
    "ledger_accounts:all",
    "file_attachments:all",
)


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.ids = IdSequences()
        self.companies: dict[str, Company] = {}
        self._taken_ids: set[int] = set()
        for token in config.tokens:
            self.add_company(token, config.token_scopes.get(token))

    def add_company(self, token: str, scopes: frozenset[str] | None = None) -> Company:
        if not token or token in self.companies:
            raise ValueError("company tokens must be non-empty and distinct")
        company_id = self._stable_id(token)
        company = Company(
            id=company_id, token=token, name=f"Sandbox company {company_id}", scopes=scopes
        )
        now = self.clock.now()
        account_ids = [self.ids.next("ledger_accounts") for _ in FRENCH_CHART]
        for account in chart_of_accounts(account_ids, now):
            company.ledger_accounts.add(account)
        self.companies[token] = company
        return company

    def _stable_id(self, token: str) -> int:
        """A company id that depends on the token only, so a restarted sandbox (or another one
        given the same tokens in another order) names each company as before; distinct per
        token within a sandbox."""
        digest = hashlib.sha256(token.encode()).digest()
        company_id = 1_000 + int.from_bytes(digest[:4], "big") % 9_000_000
        while company_id in self._taken_ids:
            company_id += 1
        self._taken_ids.add(company_id)
        return company_id

    def company(self, token: str) -> Company:
        company = self.companies.get(token)
        if company is None:
            raise error_status(404, f"Unknown sandbox company token {token[:3]}…")
        return company

    def now(self) -> dt.datetime:
        return self.clock.now()

    def today(self) -> dt.date:
        return self.clock.now().date()

    def changed(
        self,
        company: Company,
        resource: str,
        record: Record,
        operation: Operation,
        created_at: dt.datetime,
        updated_at: dt.datetime,
    ) -> None:
        """Feeds the resource's changelog and counts writes per external_reference."""
        company.changelogs[resource].record(
            record.id, operation, self.clock.now(), created_at, updated_at
        )
        if operation != "delete":
            company.writes[(resource, record.external_reference)] += 1

    def granted_scopes(self, company: Company) -> list[str]:
        return sorted(company.scopes) if company.scopes is not None else list(ALL_SCOPES)


def scope_allows(scopes: frozenset[str] | None, resource: str, *, write: bool) -> bool:
    if scopes is None:
        return True
    if f"{resource}:all" in scopes:
        return True
    return not write and f"{resource}:readonly" in scopes
