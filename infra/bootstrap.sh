#!/usr/bin/env bash
# Makes a machine ready to build and test: Java 17+ and Maven (for the local Kafka), uv, and the workspace's
# Python environment from uv.lock.
#
#   infra/bootstrap.sh
#
# Missing Debian packages are installed with apt-get (root only). When uv is not on PATH it is installed from PyPI
# into .local/tools (a venv, which sidesteps Debian's externally-managed system Python); `eval "$(infra/env.sh)"`
# then puts it on PATH.
set -euo pipefail

# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TOOLS_DIR="$STOCKPIT_LOCAL_DIR/tools"
MIN_JAVA_MAJOR=17

java_major() {
  local java="java"
  [[ -n "${JAVA_HOME:-}" ]] && java="$JAVA_HOME/bin/java"
  command -v "$java" >/dev/null || return 1
  # `java -version` prints e.g.: openjdk version "17.0.15" 2025-04-15
  "$java" -version 2>&1 | sed -nE '1s/.*version "([0-9]+).*/\1/p'
}

ensure_java_and_maven() {
  local missing=() major
  major="$(java_major || true)"
  if [[ -z "$major" || "$major" -lt $MIN_JAVA_MAJOR ]]; then
    missing+=(default-jdk-headless)
  fi
  command -v mvn >/dev/null || missing+=(maven)
  if ((${#missing[@]} > 0)); then
    apt_install "${missing[@]}"
  fi
  major="$(java_major || true)"
  [[ -n "$major" && "$major" -ge $MIN_JAVA_MAJOR ]] ||
    die "Kafka needs Java $MIN_JAVA_MAJOR or newer, found '${major:-none}'; set JAVA_HOME to one"
  log "java $major, $(mvn -v 2>/dev/null | sed -nE '1s/\x1b\[[0-9;]*m//g; 1p')"
}

ensure_uv() {
  if command -v uv >/dev/null; then
    return 0
  fi
  if [[ -x "$TOOLS_DIR/bin/uv" ]]; then
    export PATH="$TOOLS_DIR/bin:$PATH"
    return 0
  fi
  log "uv not found; installing it from PyPI into $TOOLS_DIR"
  if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3 python3-venv
  fi
  python3 -m venv "$TOOLS_DIR"
  "$TOOLS_DIR/bin/python" -m pip install --quiet --disable-pip-version-check uv
  export PATH="$TOOLS_DIR/bin:$PATH"
}

sync_workspace() {
  cd "$STOCKPIT_ROOT"
  if [[ -f uv.lock ]]; then
    # Exactly the locked versions; fails when uv.lock is out of date with a pyproject.
    uv sync --all-packages --locked
  else
    uv sync --all-packages
  fi
}

ensure_java_and_maven
ensure_uv
log "$(uv --version)"
sync_workspace
log "ready"
