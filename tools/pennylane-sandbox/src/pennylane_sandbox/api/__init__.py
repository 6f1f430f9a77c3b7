"""The public Company API v2 handlers (everything under /api/external/v2), one module per resource.

Each resource module registers its operations in `common.OPERATIONS` when it is imported, so
importing them here is what serves them; `routing.api_routes` turns the registry into routes."""

from . import (  # noqa: F401
    changelogs,
    commercial_documents,
    customer_invoices,
    customers,
    file_attachments,
    ledger_accounts,
    me,
    products,
    quotes,
    supplier_invoices,
    suppliers,
)
from .common import COMPANY_SCOPE_KEY
from .lines import build_line
from .routing import api_routes, served_operations

__all__ = ["COMPANY_SCOPE_KEY", "api_routes", "build_line", "served_operations"]
