"""The Pennylane company a tenant is pinned to, and whether its token is bound to the tenant.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for tenants connected before connecting proved the token: pinned at their next
    # connect or reconnect.
    op.add_column("connections", sa.Column("pennylane_company_id", sa.BigInteger, nullable=True))
    op.add_column("connections", sa.Column("pennylane_company_name", sa.Text, nullable=True))
    # 0: encrypted with the key itself (before tokens were bound to their tenant); 1: with the
    # tenant's derived key. Existing rows are 0 until `stockpit rotate-token-keys` rewrites them.
    op.add_column(
        "connections",
        sa.Column("token_binding", sa.SmallInteger, nullable=False, server_default="0"),
    )
    op.alter_column("connections", "token_binding", server_default="1")
