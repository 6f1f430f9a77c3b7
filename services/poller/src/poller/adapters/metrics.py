"""Prometheus metrics of the poller, labelled by tenant (tenant ids are not secrets)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DOCUMENTS_READ = Counter(
    "poller_documents_read_total", "Pennylane records read", ["tenant", "stream"]
)
EVENTS_PUBLISHED = Counter(
    "poller_events_published_total",
    "Events committed to the outbox (the relay then publishes them with acks=all)",
    ["tenant", "stream"],
)
REQUESTS = Counter(
    "poller_pennylane_requests_total", "Requests sent to Pennylane", ["tenant", "status"]
)
RATE_LIMITED = Counter(
    "poller_pennylane_rate_limited_total", "429 answers received from Pennylane", ["tenant"]
)
SYNC_LAG = Gauge(
    "poller_sync_lag_seconds",
    "Now minus the newest changelog processed_at handled, per tenant and stream",
    ["tenant", "stream"],
)
LAST_SUCCESS = Gauge(
    "poller_last_successful_sync_timestamp_seconds", "End of the last successful sync", ["tenant"]
)
SYNCS = Counter("poller_syncs_total", "Tenant syncs by outcome", ["tenant", "outcome"])
