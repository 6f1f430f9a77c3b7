"""The tenant's sync report: problems kept as they are emitted, and the poller's sync runs.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "problems",
        sa.Column("problem_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("subject_kind", sa.Text, nullable=False),
        sa.Column("subject_id", sa.Text, nullable=False),
        sa.Column("product_id", sa.Text, nullable=True),
        sa.Column("location_id", sa.Text, nullable=True),
        sa.Column("document_reference", sa.Text, nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occurrences", sa.BigInteger, nullable=False, server_default="1"),
    )
    op.create_index("problems_by_tenant", "problems", ["tenant_id", "problem_id"])
    op.create_index(
        "open_problems_by_tenant",
        "problems",
        ["tenant_id", "kind"],
        postgresql_where=sa.text("acknowledged_at IS NULL"),
    )
    # One open negative-stock problem per product and location: later movements update it.
    op.create_index(
        "open_negative_stock",
        "problems",
        ["tenant_id", "product_id", "location_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'negative_stock' AND acknowledged_at IS NULL"),
    )
    op.create_table(
        "sync_runs",
        sa.Column("run_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("streams", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("documents_published", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("error_kind", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("sync_runs_by_tenant", "sync_runs", ["tenant_id", "run_id"])
    op.create_index("sync_runs_by_end", "sync_runs", ["tenant_id", "finished_at"])


def downgrade() -> None:
    op.drop_table("sync_runs")
    op.drop_table("problems")
