"""A return whose credit note belongs to a Pennylane company the tenant left has no credit
note id: re-pointing the tenant unlinks it, so the new company's credit notes never find it.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("returns", "credit_note_id", nullable=True)


def downgrade() -> None:
    # Fails while an unlinked return exists: its credit note id is gone for good.
    op.alter_column("returns", "credit_note_id", nullable=False)
