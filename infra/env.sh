#!/usr/bin/env bash
# Prints the environment that points the services and tests at the local Kafka and PostgreSQL:
#   eval "$(infra/env.sh)"
# Honours the same variables as kafka.sh and postgres.sh (KAFKA_PORT, PG_PORT, PG_USER, PG_PASSWORD, PG_DATABASE).
# When infra/bootstrap.sh had to install uv into .local/tools, that folder goes on PATH too.
set -euo pipefail

# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

kafka_port="${KAFKA_PORT:-19092}"
pg_port="${PG_PORT:-15432}"
pg_user="${PG_USER:-stockpit}"
pg_password="${PG_PASSWORD:-stockpit}"
pg_database="${PG_DATABASE:-stockpit}"

printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\n' "127.0.0.1:${kafka_port}"
printf 'export DATABASE_URL=%q\n' "postgresql+asyncpg://${pg_user}:${pg_password}@127.0.0.1:${pg_port}/${pg_database}"
tools_bin="$STOCKPIT_LOCAL_DIR/tools/bin"
if [[ -x "$tools_bin/uv" ]] && ! command -v uv >/dev/null; then
  # shellcheck disable=SC2016 # $PATH must expand where the output is eval'ed, not here.
  printf 'export PATH=%q:"$PATH"\n' "$tools_bin"
fi
