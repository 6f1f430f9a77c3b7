#!/usr/bin/env bash
# Runs a command with the local Kafka and PostgreSQL up, and stops afterwards whatever it started.
#
#   infra/with-infra.sh uv run pytest
#
# A server that was already running before stays running (a developer's own session); the
# command's exit code is passed through. KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are exported
# for the command (from infra/env.sh) unless STOCKPIT_EXTERNAL_INFRA=1, in which case the
# caller's own values are used and nothing is started or stopped.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ "${STOCKPIT_EXTERNAL_INFRA:-0}" == "1" ]]; then
  exec "$@"
fi

started=()
stop_started() {
  local service
  # shellcheck disable=SC2317 # called by the EXIT trap
  for service in "${started[@]}"; do
    "$here/$service.sh" stop || true
  done
}
trap stop_started EXIT

for service in kafka postgres; do
  if ! "$here/$service.sh" status >/dev/null 2>&1; then
    "$here/$service.sh" start
    started+=("$service")
  fi
done

eval "$("$here/env.sh")"
set +e
"$@"
status=$?
set -e
exit "$status"
