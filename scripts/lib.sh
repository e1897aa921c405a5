# shellcheck shell=bash
# Shared by the scripts in this folder: logging, the project's state paths, Postgres defaults.

FIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export FIN_ROOT
# Every go command runs the toolchain go.mod names (the Makefile exports the same), whatever the
# machine's own Go is; the go command fetches it from the module proxy once.
GOTOOLCHAIN=$(sed -n 's/^toolchain //p' "$FIN_ROOT/go.mod")
export GOTOOLCHAIN

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

# machine_line prints the CPU model, the cores and the load average, to print beside a ratio: the
# same benchmark gives other figures on another CPU, on fewer cores, or beside other work.
machine_line() {
  printf 'machine: %s, %s cores, load average %s\n' \
    "$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# free_port prints a free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# throwaway_stack NAME prepares the environment of a `fin up` that shares nothing with `make run`
# or another test: the database fin_NAME_<pid> and its own replication slot, state in a new
# temporary folder, every address on a free loopback port. It sets db, slot, admin and work (the
# caller creates the database and removes both at the end) and exports what fin reads.
# shellcheck disable=SC2034 # db, slot, admin and work are for the caller
throwaway_stack() {
  db=fin_$1_$$
  slot=fin_capture_$1_$$
  export PGPASSFILE=${PGPASSFILE:-$FIN_PGPASSFILE}
  admin="postgres://fin@127.0.0.1:$FIN_PG_PORT/fin?sslmode=disable"
  export DATABASE_URL="postgres://fin@127.0.0.1:$FIN_PG_PORT/$db?sslmode=disable"
  work=$(mktemp -d)
  export FIN_STATE_DIR=$work/state WAREHOUSE_PATH=$work/state/warehouse.duckdb FIN_JWT_SECRET_FILE=$work/jwt-secret
  API_ADDR=127.0.0.1:$(free_port) CONSOLE_ADDR=127.0.0.1:$(free_port) S3_ADDR=127.0.0.1:$(free_port)
  export API_ADDR CONSOLE_ADDR S3_ADDR FIN_CONSOLE_URL=http://$CONSOLE_ADDR FIN_CAPTURE_SLOT=$slot
  export FIN_DBT_SCHEDULE=${FIN_DBT_SCHEDULE:-"rate(1 minute)"}
}

# stack_up LOG [fin up flags...] starts `bin/fin up` with the environment throwaway_stack set, its
# output appended to LOG, sets up_pid, and returns once its API and console answer.
stack_up() {
  local out=$1
  shift
  bin/fin up "$@" >>"$out" 2>&1 &
  up_pid=$!
  for _ in $(seq 1 240); do
    curl -fs "http://$CONSOLE_ADDR/healthz" >/dev/null 2>&1 && curl -fs "http://$API_ADDR/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$up_pid" 2>/dev/null || die "fin up exited: $(tail -20 "$out")"
    sleep 0.5
  done
  die "fin up was not ready in 120 s: $(tail -20 "$out")"
}

# stack_down [SIGNAL] stops the stack stack_up started (SIGINT, as Ctrl-C, unless told) and waits.
stack_down() {
  [ -n "${up_pid:-}" ] || return 0
  kill "-${1:-INT}" "$up_pid" 2>/dev/null || true
  wait "$up_pid" 2>/dev/null || true
  up_pid=""
}

# kill_during_snapshot TABLE ROWS LOG waits until the warehouse holds some but not all of the ROWS
# snapshot rows (op r) of TABLE, then kill -9s the stack stack_up started, whose output is LOG (a
# file of this run alone). It fails when the capture had already reported the snapshot done, so
# the kill really lands in the middle of one.
kill_during_snapshot() {
  local table=$1 rows=$2 out=$3 seen=0
  for _ in $(seq 1 900); do
    seen=$(bin/fin sql "select count(*) from raw.$table where op = 'r'" 2>/dev/null | tail -1) || seen=0
    [[ "$seen" =~ ^[0-9]+$ ]] || seen=0
    [ "$seen" -gt 0 ] && break
    sleep 0.1
  done
  [ "$seen" -gt 0 ] || die "no snapshot row of $table reached the warehouse in 90 s: $(tail -5 "$out")"
  [ "$seen" -lt "$rows" ] || die "the whole snapshot of $table had landed before the kill; raise FIN_TEST_SNAPSHOT_ROWS"
  stack_down KILL
  # Done is the initial snapshot delivered, an incremental one finished, or TABLE's snapshot
  # recorded in the lake's manifest (other tables' records may come first).
  if grep -iE 'initial snapshot delivered|incremental snapshot finished|snapshot recorded' "$out" \
    | grep -qiE "initial snapshot delivered|incremental snapshot finished|$table"; then
    die "the capture had finished the snapshot before the kill ($seen of $rows rows of $table loaded); raise FIN_TEST_SNAPSHOT_ROWS"
  fi
  log "killed with $seen of $rows snapshot rows of $table loaded"
}

# big_config FILE SEED TRANSACTIONS writes a generator configuration with one large table (for
# snapshots that take long enough to interrupt) and a continuous rate of 40 operations a second.
big_config() {
  cat >"$1" <<YAML
seed: $2
customers: 500
accounts: 800
transactions: $3
continuous:
  rate: 40
YAML
}

# drop_throwaway removes the database and slot throwaway_stack named.
drop_throwaway() {
  psql -X -q "$admin" -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '$FIN_CAPTURE_SLOT' AND active" -c 'SELECT pg_sleep(1)' \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$FIN_CAPTURE_SLOT'" \
    -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
