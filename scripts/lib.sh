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

# The waits below follow progress. The machine is shared (a loaded machine slows every part of the
# stack) and so is the Postgres cluster: a replication slot being created waits for every
# transaction that held an id anywhere on the cluster when its creation began (another test's or a
# benchmark's capture reading a large table holds one for minutes). A fixed total fails on either;
# a wait that fails only when nothing advances does not, and names what it waited for.

# cluster_xids prints the cluster's transactions that have held an id for a second or more
# (shared/pgtest/xids.sql, the query the Go tests print): what holds a slot being created.
cluster_xids() {
  local x
  x=$(psql -X -At "$admin" -f "$FIN_ROOT/shared/pgtest/xids.sql" 2>&1 | head -20)
  printf '%s\n' "${x:-none open for a second or more}"
}

# slot_waits DB prints what the backends of DB wait for elsewhere on the cluster, nothing when
# none waits (shared/pgtest/waits.sql): a slot being created there shows as such a wait.
slot_waits() { psql -X -At "$admin" -v database="$1" -f "$FIN_ROOT/shared/pgtest/waits.sql" 2>/dev/null || true; }

# wait_for WHAT STALL LIMIT CHECK PROGRESS runs the command CHECK every WAIT_POLL seconds (1
# unless set) until it succeeds. It fails once the output of the command PROGRESS has not changed
# for STALL seconds, not counting the time a slot being created in $db waits for transactions
# elsewhere on the cluster (logged once), or once LIMIT seconds have passed in all. The failure
# says what it waited for, the last progress and the cluster's open transactions.
wait_for() {
  local what=$1 stall=$2 limit=$3 check=$4 progress=$5
  local began=$SECONDS last=$SECONDS seen now held="" w
  seen=$($progress 2>&1 || true)
  until $check; do
    now=$($progress 2>&1 || true)
    [ "$now" = "$seen" ] || { seen=$now; last=$SECONDS; }
    w=$(slot_waits "${db:-}")
    if [ -n "$w" ]; then
      last=$SECONDS
      [ -n "$held" ] || log "$what: a slot being created in $db waits for transactions elsewhere on the cluster (not counted): $w"
      held=$w
    fi
    if ((SECONDS - last > stall)) || ((SECONDS - began > limit)); then
      die "$what: nothing advanced for $((SECONDS - last)) s (at most $stall), $((SECONDS - began)) s in all (at most $limit); last progress: $seen${held:+; a slot being created waited for: $held}; open transactions holding ids on the cluster: $(cluster_xids | tr '\n' ';')"
    fi
    sleep "${WAIT_POLL:-1}"
  done
}

# stack_up LOG [fin up flags...] starts `bin/fin up` with the environment throwaway_stack set, its
# output appended to LOG, sets up_pid, and returns once its API and console answer: it fails when
# fin up exits, or when neither LOG nor its log file has grown for 2 minutes (10 in all).
stack_up() {
  up_out=$1
  shift
  bin/fin up "$@" >>"$up_out" 2>&1 &
  up_pid=$!
  wait_for "fin up ready" 120 600 up_ready up_progress
}

# up_ready succeeds once the stack's API and console answer, and fails the script if fin up exited.
up_ready() {
  kill -0 "$up_pid" 2>/dev/null || die "fin up exited: $(tail -20 "$up_out")"
  curl -fs "http://$CONSOLE_ADDR/healthz" >/dev/null 2>&1 && curl -fs "http://$API_ADDR/healthz" >/dev/null 2>&1
}

# up_progress is how far the stack has got: the sizes of its output and of its log.
up_progress() { cat "$up_out" "$FIN_STATE_DIR/logs/fin-up.log" 2>/dev/null | wc -c; }

# dbt_progress is how far the stack's dbt builds have got: the size of dbt's logs (a build writes a
# line per node as it goes).
dbt_progress() { cat "$FIN_STATE_DIR"/dbt/logs/*.log 2>/dev/null | wc -c; }

# wait_captured waits until the capture's slot ($FIN_CAPTURE_SLOT) has confirmed everything
# written on the cluster so far: the capture has delivered it, and what is left to `fin reconcile
# --wait` is the lake and the warehouse. Its slot's creation may first wait for a neighbour's
# transactions (wait_for), and an initial snapshot holds the position back while the log grows.
wait_captured() {
  captured_target=$(psql -X -At "$admin" -c "SELECT pg_current_wal_lsn()")
  wait_for "the capture's slot $FIN_CAPTURE_SLOT at $captured_target (progress: its confirmed position, the stack's log)" \
    120 900 slot_captured captured_progress
}
captured_progress() { slot_position; up_progress; }
slot_captured() { [ "$(psql -X -At "$admin" -c "SELECT coalesce(bool_or(confirmed_flush_lsn >= '$captured_target'), false) FROM pg_replication_slots WHERE slot_name = '$FIN_CAPTURE_SLOT'")" = t ]; }
slot_position() { psql -X -At "$admin" -c "SELECT coalesce(max(confirmed_flush_lsn)::text, 'no slot yet') FROM pg_replication_slots WHERE slot_name = '$FIN_CAPTURE_SLOT'"; }

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
  local table=$1 rows=$2 out=$3
  snapshot_table=$table snapshot_seen=0
  WAIT_POLL=0.1 wait_for "a snapshot row of $table in the warehouse" 120 900 snapshot_landed up_progress
  local seen=$snapshot_seen
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

# snapshot_landed succeeds once the warehouse holds a snapshot row of $snapshot_table, counted in
# snapshot_seen (kill_during_snapshot).
snapshot_landed() {
  snapshot_seen=$(bin/fin sql "select count(*) from raw.$snapshot_table where op = 'r'" 2>/dev/null | tail -1) || snapshot_seen=0
  [[ "$snapshot_seen" =~ ^[0-9]+$ ]] || snapshot_seen=0
  [ "$snapshot_seen" -gt 0 ]
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

# keep_logs STATUS NAME FILE... copies a benchmark run's logs into .fin/bench-artifacts/NAME when
# the run failed (STATUS non-zero) or BENCH_KEEP_LOGS is set.
keep_logs() {
  local status=$1 name=$2
  shift 2
  { [ "$status" != 0 ] || [ -n "${BENCH_KEEP_LOGS:-}" ]; } || return 0
  mkdir -p "$FIN_ROOT/.fin/bench-artifacts/$name"
  cp -r "$@" "$FIN_ROOT/.fin/bench-artifacts/$name/" 2>/dev/null || true
  log "logs kept in .fin/bench-artifacts/$name"
}

# drop_throwaway removes the database and slot throwaway_stack named.
drop_throwaway() {
  psql -X -q "$admin" -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '$FIN_CAPTURE_SLOT' AND active" -c 'SELECT pg_sleep(1)' \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$FIN_CAPTURE_SLOT'" \
    -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
