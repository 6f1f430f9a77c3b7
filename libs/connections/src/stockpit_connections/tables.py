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
    # 1: under the tenant's derived key; 0: under the key itself (written before binding).
    sa.Column("token_binding", sa.SmallInteger, nullable=False, server_default="1"),
    # The Pennylane company the token proved to belong to when connecting (NULL: not yet proved).
    sa.Column("pennylane_company_id", sa.BigInteger, nullable=True),
    sa.Column("pennylane_company_name", sa.Text, nullable=True),
    sa.Column("settings", postgresql.JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True),
    # While the tenant's first sync runs: since when (NULL otherwise); and when it last ended.
    sa.Column("first_sync_started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("first_sync_ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(
        "status IN ('connected', 'disconnected', 'needs_new_token')", name="connections_status"
    ),
    schema=SCHEMA_PLACEHOLDER,
)
