"""The ledger's cause in detail; settings, catalog, orders, returns and purchases.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _document_table(name: str, id_column: str, *lookups: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column(id_column, sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        *lookups,
        sa.Column("doc", postgresql.JSONB, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def upgrade() -> None:
    for column in ("cause_kind", "subject_id", "reference", "version", "lines", "note"):
        op.add_column("stock_ledger", sa.Column(column, sa.Text, nullable=True))
    op.add_column("stock_ledger", sa.Column("entry_id", sa.Uuid, nullable=True))
    op.create_index("stock_ledger_by_subject", "stock_ledger", ["tenant_id", "subject_id"])
    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("doc", postgresql.JSONB, nullable=False),
    )
    _document_table("locations", "location_id")
    op.create_index("locations_by_tenant", "locations", ["tenant_id"])
    _document_table("products", "product_id", sa.Column("pennylane_id", sa.BigInteger))
    op.create_index(
        "products_by_pennylane_id", "products", ["tenant_id", "pennylane_id"], unique=True
    )
    _document_table("customers", "customer_id", sa.Column("pennylane_id", sa.BigInteger))
    op.create_index(
        "customers_by_pennylane_id", "customers", ["tenant_id", "pennylane_id"], unique=True
    )
    _document_table("suppliers", "supplier_id")
    op.create_index("suppliers_by_tenant", "suppliers", ["tenant_id"])
    _document_table(
        "orders",
        "order_id",
        sa.Column("quote_id", sa.BigInteger),
        sa.Column("status", sa.Text, nullable=False),
    )
    op.create_index("orders_by_quote", "orders", ["tenant_id", "quote_id"])
    _document_table(
        "returns", "return_id", sa.Column("credit_note_id", sa.BigInteger, nullable=False)
    )
    op.create_index(
        "returns_by_credit_note", "returns", ["tenant_id", "credit_note_id"], unique=True
    )
    _document_table("purchases", "purchase_id")
    op.create_index("purchases_by_tenant", "purchases", ["tenant_id"])
    op.create_table(
        "order_documents",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("reference", sa.Text, primary_key=True),
        sa.Column("order_id", sa.Uuid, nullable=False),
    )
    op.create_table(
        "purchase_receipts",
        sa.Column("receipt_id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("purchase_id", sa.Uuid, nullable=False),
    )
    op.create_table(
        "write_status",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("entity_kind", sa.Text, primary_key=True),
        sa.Column("entity_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("pennylane_id", sa.BigInteger),
        sa.Column("reason", sa.Text),
        sa.Column("retryable", sa.Boolean),
        sa.Column(
            "reported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
