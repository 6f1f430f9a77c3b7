"""The poller's rate share is at most 0.96 (24 of the token's 25 requests per window), since
outbound always keeps one request: a stored share above it is lowered to it, so the settings
read back within their bounds.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for key in ("poller_rate_share", "poller_first_sync_rate_share"):
        op.execute(
            "UPDATE connections SET settings = jsonb_set(settings, "
            f"'{{{key}}}', to_jsonb('0.96'::text)) "
            f"WHERE (settings ->> '{key}')::numeric > 0.96"
        )
