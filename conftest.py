"""Fixtures shared by every package's tests (real Kafka, real PostgreSQL)."""

pytest_plugins = ["stockpit_testing.fixtures", "stockpit_testing.timeout_report"]
