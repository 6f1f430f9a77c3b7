# Stockpit Sync — the two commands are `make demo` and `make test`; both install and start
# whatever they need (uv, the Python environment, Java and Maven, Kafka, PostgreSQL).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# uv installed by infra/bootstrap.sh when the machine had none.
export PATH := $(CURDIR)/.local/tools/bin:$(PATH)
UV_RUN := uv run --frozen
WITH_INFRA := infra/with-infra.sh

# Every package of the workspace, for checks that run per package (deptry).
PACKAGES := $(wildcard libs/* services/* tools/*)

.PHONY: help bootstrap infra-up infra-down lint test test-fast demo bench schemas

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/make \1\t\2/' | expand -t 18

bootstrap: ## install uv, the Python environment, Java and Maven when missing
	infra/bootstrap.sh

infra-up: bootstrap ## start the local Kafka and PostgreSQL and print their environment
	infra/kafka.sh start
	infra/postgres.sh start
	@infra/env.sh

infra-down: ## stop the local Kafka and PostgreSQL
	infra/kafka.sh stop
	infra/postgres.sh stop

lint: bootstrap ## ruff (with complexity), formatting, mypy, import-linter layer contracts, deptry
	$(UV_RUN) ruff check .
	$(UV_RUN) ruff format --check .
	$(UV_RUN) mypy
	$(UV_RUN) lint-imports
	@for package in $(PACKAGES); do (cd "$$package" && $(UV_RUN) deptry src) || exit 1; done

# Tests create topics per test: two partitions each keep the one local broker light.
# The suite mostly waits (sync intervals, rate limits, restarts): pytest-xdist workers overlap
# the waits, longest tests first (tests/conftest.py). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 3
test: bootstrap ## every test (unit, integration, end to end) on real Kafka and PostgreSQL
	STOCKPIT_TOPIC_PARTITIONS=2 $(WITH_INFRA) $(UV_RUN) pytest -n $(PYTEST_WORKERS)

test-fast: bootstrap ## unit tests only: no broker, no database
	$(UV_RUN) pytest -m "not integration and not e2e"

demo: bootstrap ## run the whole system end to end on local Kafka, PostgreSQL and the Pennylane sandbox
	$(WITH_INFRA) $(UV_RUN) python -m stockpit_ops.demo

bench: bootstrap ## every benchmark under bench/ ('name: value unit' lines)
	$(WITH_INFRA) bench/run_all.sh

schemas: bootstrap ## re-export the event JSON Schemas to libs/contracts/schemas
	$(UV_RUN) python -m stockpit_contracts.schemas
