# Shared by the infra/*.sh scripts (sourced, not run). Defines where local state lives.
# shellcheck shell=bash

STOCKPIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Caches, data and logs of the local services; git-ignored.
STOCKPIT_LOCAL_DIR="${STOCKPIT_LOCAL_DIR:-$STOCKPIT_ROOT/.local}"

log() {
  printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2
}

die() {
  log "error: $*"
  exit 1
}

# True when something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp, no extra tool needed).
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# apt-get install for the given Debian packages; only root can, others get told what to run.
apt_install() {
  if [[ $EUID -ne 0 ]]; then
    die "missing packages: $*; install them with: sudo apt-get install $*"
  fi
  log "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
