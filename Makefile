# Stockpit Sync — the two commands are `make demo` and `make test`; both install and start
# whatever they need (uv, the Python environment, Java and Maven, Kafka, PostgreSQL).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# uv installed by infra/bootstrap.sh when the machine had none.
export PATH := $(CURDIR)/.local/tools/bin:$(PATH)
UV_RUN := uv run --frozen
WITH_INFRA := infra/with-infra.sh

.PHONY: help bootstrap infra-up infra-down lint test test-fast demo bench schemas

help:
	@echo "make demo       run the whole system end to end on local Kafka, PostgreSQL and the Pennylane sandbox"
	@echo "make test       lint, type-check and run every test on real Kafka and PostgreSQL"
	@echo "make bench      run every benchmark under bench/ (prints 'name: value unit' lines)"
	@echo "make infra-up   start the local Kafka and PostgreSQL (infra-down stops them)"

bootstrap:
	infra/bootstrap.sh

infra-up: bootstrap
	infra/kafka.sh start
	infra/postgres.sh start
	@infra/env.sh

infra-down:
	infra/kafka.sh stop
	infra/postgres.sh stop

lint: bootstrap
	$(UV_RUN) ruff check .
	$(UV_RUN) ruff format --check .
	$(UV_RUN) mypy

# Tests create topics per test: two partitions each keep the one local broker light.
# The suite mostly waits (sync intervals, rate limits, restarts): pytest-xdist workers overlap
# the waits, longest tests first (tests/conftest.py). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 3
test: lint
	STOCKPIT_TOPIC_PARTITIONS=2 $(WITH_INFRA) $(UV_RUN) pytest -n $(PYTEST_WORKERS)

# Unit tests only: no broker, no database.
test-fast: bootstrap
	$(UV_RUN) pytest -m "not integration and not e2e"

demo: bootstrap
	$(WITH_INFRA) $(UV_RUN) python -m stockpit_ops.demo

bench: bootstrap
	$(WITH_INFRA) bench/run_all.sh

schemas: bootstrap
	$(UV_RUN) python -m stockpit_contracts.schemas
