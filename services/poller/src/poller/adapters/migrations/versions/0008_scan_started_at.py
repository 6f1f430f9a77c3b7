"""Pennylane's time when a stream's full scan started, kept until the changelog passes it: the
follow after a first scan leaves out the invoices the scan left out for their date (rule 17)
also when it resumes in a later run. A scan under way at the upgrade gets the time it started
with the default margin (2 minutes before it, plus the truncated second), as the code before
it computed.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "streams", sa.Column("scan_started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE streams SET scan_started_at = changelog_from + interval '121 seconds' "
        "WHERE phase = 'scanning' AND changelog_from IS NOT NULL"
    )
