"""Schedule and leases, stream watermarks, published documents and snapshots.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.Text, nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_table(
        "streams",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("after_id", sa.BigInteger, nullable=False),
        sa.Column("changelog_from", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "published_documents",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("pennylane_id", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "product_snapshots",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("pennylane_id", sa.BigInteger, primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=True),
        sa.Column("ledger_account_number", sa.Text, nullable=True),
        sa.Column("unit", sa.Text, nullable=True),
    )
    op.create_table(
        "customer_snapshots",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("pennylane_id", sa.BigInteger, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("emails", postgresql.ARRAY(sa.Text), nullable=False),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("pennylane_id", sa.BigInteger, primary_key=True),
        sa.Column("number", sa.Text, nullable=False),
    )
