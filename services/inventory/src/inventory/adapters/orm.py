"""Tables of the inventory schema (the migrations create them; queries use these).

Stock levels and the append-only ledger are relational rows. Aggregates (settings, locations,
products, customers, suppliers, orders, returns, purchases) are JSON documents written by
`adapters.codec` (JSONB, but JSON text for orders), with the columns needed to find and lock
them beside the document.
"""

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

stock_levels = sa.Table(
    "stock_levels",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("product_id", sa.Text, primary_key=True),
    sa.Column("location_id", sa.Text, primary_key=True),
    sa.Column("real", sa.Numeric(20, 6), nullable=False),
    sa.Column("reserved", sa.Numeric(20, 6), nullable=False),
    sa.Column("incoming", sa.Numeric(20, 6), nullable=False),
)

stock_ledger = sa.Table(
    "stock_ledger",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("product_id", sa.Text, nullable=False),
    sa.Column("location_id", sa.Text, nullable=False),
    sa.Column("delta_real", sa.Numeric(20, 6), nullable=False),
    sa.Column("delta_reserved", sa.Numeric(20, 6), nullable=False),
    sa.Column("delta_incoming", sa.Numeric(20, 6), nullable=False),
    sa.Column("cause", sa.Text, nullable=False),
    sa.Column(
        "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    # 0003: the cause in detail (rule 6: every entry names its cause).
    sa.Column("entry_id", sa.Uuid, nullable=True),
    sa.Column("cause_kind", sa.Text, nullable=True),
    sa.Column("subject_id", sa.Text, nullable=True),
    sa.Column("reference", sa.Text, nullable=True),
    sa.Column("version", sa.Text, nullable=True),
    sa.Column("lines", sa.Text, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
)


class JsonText(sa.types.TypeDecorator[Any]):
    """A JSON document kept as text: read back parsed, written as the codec's JSON text."""

    impl = sa.Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        return None if value is None else json.loads(value)


def _document_table(
    name: str,
    id_column: str,
    *lookups: sa.Column[object],
    doc_type: sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]] = postgresql.JSONB,
) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column(id_column, sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        *lookups,
        sa.Column("doc", doc_type, nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )


tenant_settings = sa.Table(
    "tenant_settings",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("doc", postgresql.JSONB, nullable=False),
)
locations = _document_table("locations", "location_id")
products = _document_table(
    "products",
    "product_id",
    sa.Column("pennylane_id", sa.BigInteger, nullable=True),
    # 0007: set once the product was merged into another (rule 15).
    sa.Column("merged_into", sa.Uuid, nullable=True),
)
customers = _document_table(
    "customers", "customer_id", sa.Column("pennylane_id", sa.BigInteger, nullable=True)
)
suppliers = _document_table("suppliers", "supplier_id")
# Orders are written in every batch of documents and never queried inside: their document is
# JSON text, which PostgreSQL stores without parsing it (see migration 0004).
orders = _document_table(
    "orders",
    "order_id",
    sa.Column("quote_id", sa.BigInteger, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    doc_type=JsonText,
)
returns = _document_table(
    "returns", "return_id", sa.Column("credit_note_id", sa.BigInteger, nullable=True)
)
purchases = _document_table("purchases", "purchase_id")

# Which order holds a Pennylane document ("invoice:123"): a deletion names no quote.
order_documents = sa.Table(
    "order_documents",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("reference", sa.Text, primary_key=True),
    sa.Column("order_id", sa.Uuid, nullable=False),
)

# Which purchase a receipt belongs to: outbound results name the receipt only.
purchase_receipts = sa.Table(
    "purchase_receipts",
    metadata,
    sa.Column("receipt_id", sa.Uuid, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("purchase_id", sa.Uuid, nullable=False),
)

# The last thing the outbound service reported about a Stockpit record's write to Pennylane.
write_status = sa.Table(
    "write_status",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("entity_kind", sa.Text, primary_key=True),
    sa.Column("entity_id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("pennylane_id", sa.BigInteger, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("retryable", sa.Boolean, nullable=True),
    sa.Column(
        "reported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

# 0008: problems as they were emitted (the tenant's sync report); a person acknowledges them.
problems = sa.Table(
    "problems",
    metadata,
    sa.Column("problem_id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("subject_kind", sa.Text, nullable=False),
    sa.Column("subject_id", sa.Text, nullable=False),
    sa.Column("product_id", sa.Text, nullable=True),
    sa.Column("location_id", sa.Text, nullable=True),
    sa.Column("document_reference", sa.Text, nullable=True),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
    # How many times it happened while open (negative stock: one open problem per product and
    # location, updated by each movement that pushes it further down).
    sa.Column("occurrences", sa.BigInteger, nullable=False, server_default="1"),
)

# 0008: how the poller's sync runs ended, as it reported them over Kafka.
sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("run_id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("streams", postgresql.ARRAY(sa.Text), nullable=False),
    sa.Column("documents_published", sa.BigInteger, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("error_kind", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)
