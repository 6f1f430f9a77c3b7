"""The `connections` table. Its schema is a placeholder translated at execution time, so that the
registry works from any service's engine (whose search_path is that service's own schema) and tests
can use a schema of their own."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

SCHEMA_PLACEHOLDER = "stockpit_connections_schema"
DEFAULT_SCHEMA = "connections"

metadata = sa.MetaData()

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    # Fernet token: AES-128-CBC + HMAC-SHA256, with its own timestamp and version byte.
    sa.Column("token_ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("settings", postgresql.JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('connected', 'disconnected')", name="connections_status"),
    schema=SCHEMA_PLACEHOLDER,
)
