#!/usr/bin/env bash
# Runs every benchmark under bench/ (each prints `name: value unit` lines) against the local
# Kafka and PostgreSQL that `make bench` started. A failing benchmark fails the run, after the
# others have run.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for script in bench/[!_]*.py; do
  echo "# $script" >&2
  uv run --frozen python "$script" || { echo "# $script failed" >&2; status=1; }
done
exit "$status"
