#!/usr/bin/env bash
# Freshness under load (issue 7): the whole stack (`fin up --no-generate`) on ephemeral ports and a
# throwaway database; `finbench freshness` commits 500 postings/s (one bank.Post per database
# transaction) for BENCH_SECONDS (default 120) and times each from its Postgres commit to the
# first /sql answer that holds it in raw.transactions, then in gold.fct_transactions after the next
# scheduled dbt run (FIN_DBT_SCHEDULE, default rate(1 minute)). Printed beside the target (p95 <=
# 2 s at 500 tx/s) and an unpaced burst of the same postings measured first, in the same run.
# Arguments go to finbench freshness (e.g. --rate 50 --reference-seconds 2 for a quick look).
# FIN_FRESHNESS_BENCH names another finbench driver of the same stack (snapshot-freshness.sh).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/postgres.sh
bash scripts/venv.sh >/dev/null
go build -o bin/ ./cmd/fin ./cmd/finbench
bench=${FIN_FRESHNESS_BENCH:-freshness}
throwaway_stack bench_fresh
mkdir -p "$FIN_STATE_DIR"

up_pid=""
drop() {
  psql -X -q "$admin" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$slot'" \
    -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
cleanup() {
  status=$?
  if [ "$status" != 0 ]; then
    mkdir -p "$FIN_ROOT/.fin/bench-artifacts/$bench"
    cp -r "$work/up.out" "$FIN_STATE_DIR/logs" "$FIN_ROOT/.fin/bench-artifacts/$bench/" 2>/dev/null || true
    log "logs kept in .fin/bench-artifacts/$bench"
  fi
  [ -n "$up_pid" ] && kill "$up_pid" 2>/dev/null
  wait 2>/dev/null || true
  drop
  rm -rf "$work"
}
trap cleanup EXIT
drop
psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null

log "fin up --no-generate (dbt schedule $FIN_DBT_SCHEDULE)"
LOG_LEVEL=WARN bin/fin up --no-generate >"$work/up.out" 2>&1 &
up_pid=$!
ready=0
for _ in $(seq 1 120); do
  if curl -fs "http://$CONSOLE_ADDR/healthz" >/dev/null 2>&1 && curl -fs "http://$API_ADDR/healthz" >/dev/null 2>&1; then
    ready=1 && break
  fi
  kill -0 "$up_pid" 2>/dev/null || die "fin up exited: $(tail -20 "$work/up.out")"
  sleep 0.5
done
[ "$ready" = 1 ] || die "fin up was not ready in 60 s: $(tail -20 "$work/up.out")"
LOG_LEVEL=WARN bin/finbench "$bench" --seconds "${BENCH_SECONDS:-120}" "$@"
