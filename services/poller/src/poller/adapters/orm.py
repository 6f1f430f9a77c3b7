"""The poller's own tables (schema `poller`): schedule and leases, a history of sync runs,
watermarks, and what it has published (document kinds and versions, product and customer
snapshots for enriching lines)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
    # Streams the pending import-now asked for; NULL with requested_at set = every stream.
    sa.Column("requested_streams", postgresql.ARRAY(sa.Text), nullable=True),
    sa.Column("lease_owner", sa.Text, nullable=True),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lease_version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    # From the tenant's settings in Stockpit (inventory.settings.changed); NULL = the default.
    sa.Column("sync_interval_s", sa.Integer, nullable=True),
    # Pennylane refused the token (401/403): not synced until a new token is connected.
    sa.Column("token_rejected_at", sa.DateTime(timezone=True), nullable=True),
)

# One row per sync a replica held: from the claim (same transaction) to the end of its last read
# (written in the transaction that gives the lease back). A run whose replica died keeps
# finished_at NULL. Kept for SYNC_RUNS_KEPT_DAYS; read by operators and by the test that checks
# two replicas never sync one tenant at the same time.
sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("replica_id", sa.Text, nullable=False),
    sa.Column("lease_version", sa.BigInteger, nullable=False),
    sa.Column("streams", postgresql.ARRAY(sa.Text), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("outcome", sa.Text, nullable=True),
)

streams = sa.Table(
    "streams",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("phase", sa.Text, nullable=False),
    sa.Column("after_id", sa.BigInteger, nullable=False),
    sa.Column("changelog_from", sa.DateTime(timezone=True), nullable=True),
    sa.Column("changelog_seen_ids", postgresql.ARRAY(sa.BigInteger), nullable=False),
    sa.Column("scan_started_at", sa.DateTime(timezone=True), nullable=True),
)

published_documents = sa.Table(
    "published_documents",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("pennylane_id", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

product_snapshots = sa.Table(
    "product_snapshots",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("pennylane_id", sa.BigInteger, primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("reference", sa.Text, nullable=True),
    sa.Column("ledger_account_number", sa.Text, nullable=True),
    sa.Column("unit", sa.Text, nullable=True),
)

customer_snapshots = sa.Table(
    "customer_snapshots",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("pennylane_id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("emails", postgresql.ARRAY(sa.Text), nullable=False),
)

ledger_accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("pennylane_id", sa.BigInteger, primary_key=True),
    sa.Column("number", sa.Text, nullable=False),
)

# Where the re-reading of published purchase orders stands (see poller.domain.recheck).
purchase_order_rechecks = sa.Table(
    "purchase_order_rechecks",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("below_id", sa.BigInteger, nullable=True),
    sa.Column("cycle_started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("done", sa.Integer, nullable=False, server_default="0"),
)
