# shellcheck shell=bash
# Shared by the scripts in this folder: logging, the project's state paths, Postgres defaults.

FIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export FIN_ROOT

# State that the local stack keeps between runs (warehouse, S3 objects, logs) lives in the
# repository's .fin folder (git-ignored). Postgres keeps its cluster outside the checkout, because
# the postgres user must own it and be able to reach it.
FIN_STATE_DIR=${FIN_STATE_DIR:-$FIN_ROOT/.fin}
FIN_PG_VERSION=${FIN_PG_VERSION:-15}
FIN_PG_PORT=${FIN_PG_PORT:-5433}
FIN_PG_HOME=${FIN_PG_HOME:-/var/lib/fin-orchestrator}
FIN_PGDATA=${FIN_PGDATA:-$FIN_PG_HOME/pg$FIN_PG_VERSION-$FIN_PG_PORT}
FIN_PGPASSFILE=${FIN_PGPASSFILE:-$FIN_PG_HOME/pgpass-$FIN_PG_PORT}
FIN_PG_BIN=${FIN_PG_BIN:-/usr/lib/postgresql/$FIN_PG_VERSION/bin}

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

# as_postgres runs a command as the postgres user when we are root (initdb and pg_ctl refuse
# root), and as ourselves otherwise.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# apt_install installs Debian packages, refreshing the package lists once per run.
apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to install Debian packages: $*"
  if [ -z "${FIN_APT_UPDATED:-}" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
    FIN_APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "could not install Debian packages: $*"
}
