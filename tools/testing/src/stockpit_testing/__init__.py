"""Test helpers shared by the packages' test suites: never installed in production.

`fixtures` is the pytest plugin of real Kafka and PostgreSQL fixtures (the root conftest loads
it); `inventory` drives the inventory service over Kafka and HTTP.
"""
