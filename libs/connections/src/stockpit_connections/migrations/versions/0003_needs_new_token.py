"""A connection whose token Pennylane refused (401/403) waits for a new one: no request is sent
with it until the tenant is connected again with a token Pennylane accepts.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("connections_status", "connections", type_="check")
    op.create_check_constraint(
        "connections_status",
        "connections",
        "status IN ('connected', 'disconnected', 'needs_new_token')",
    )
