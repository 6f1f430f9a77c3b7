"""Inbox, outbox and dead letters.

Revision ID: 0001
Revises:
"""

from alembic import op
from stockpit_runtime.messaging_tables import create_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)
