"""The inbox, outbox and dead-letter tables every service keeps in its own schema.

They are created by each service's first Alembic migration through `create_messaging_tables`, so
the three services share one definition instead of three copies.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from stockpit_runtime.db import checked_schema

metadata = sa.MetaData()

# The outbox relay's wake-up, sent by every transaction that adds outbox rows; PostgreSQL
# delivers it on commit (never on rollback), once per transaction and channel however often it
# was sent. The channel is the schema's (the search path of the staging connection names it),
# cut to an identifier's 63 bytes.
CHANNEL_PREFIX = "stockpit_outbox_"
NOTIFY_RELAY = f"SELECT pg_notify(left('{CHANNEL_PREFIX}' || current_schema(), 63), '')"


def relay_channel(schema: str) -> str:
    """The channel the outbox relay of `schema` LISTENs on (see `NOTIFY_RELAY`)."""
    return f"{CHANNEL_PREFIX}{checked_schema(schema)}"[:63]


inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("consumer_group", sa.Text, primary_key=True),
    sa.Column(
        "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("key", sa.LargeBinary, nullable=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", postgresql.JSONB, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("consumer_group", sa.Text, nullable=False),
    sa.Column("original_topic", sa.Text, nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("key", sa.LargeBinary, nullable=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", postgresql.JSONB, nullable=False),
    sa.Column("tenant_id", sa.Text, nullable=True),
    sa.Column("error_type", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column(
        "failed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("consumer_group", "original_topic", "partition", "offset"),
)


def create_messaging_tables(op: Any) -> None:
    """Called from a service's initial migration (`op` is alembic.op)."""
    for table in (inbox, outbox, dead_letters):
        op.create_table(
            table.name, *(column._copy() for column in table.columns), *_constraints(table)
        )


def _constraints(table: sa.Table) -> list[sa.Constraint]:
    return [
        sa.UniqueConstraint(*constraint.columns.keys())
        for constraint in table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    ]
