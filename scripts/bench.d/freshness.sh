#!/usr/bin/env bash
# Freshness under load (issues 7 and 16): the whole stack (`fin up --no-generate`) on ephemeral
# ports and a throwaway database; `finbench freshness` commits 500 postings/s (one bank.Post per
# database transaction) for BENCH_SECONDS (default 300) and times each from its Postgres commit to
# the first /sql answer that holds it in raw.transactions, then in gold (gold.fct_transactions and
# its account's current gold.dim_accounts row) with dbt building as loads commit (the template's
# BuildRequests queue) and the schedule (FIN_DBT_SCHEDULE, default rate(1 minute)) as a safety net.
# Printed beside the targets (RAW p95 <= 2 s; gold p50 <= 5 s, p95 <= 10 s at 500 tx/s) and an
# unpaced burst of the same postings measured first. Then, as the reference, a second stack with
# builds on the schedule only (FIN_DBT_BUILD_ON_LOAD=false) for BENCH_SCHEDULE_SECONDS (default
# 120; 0 skips it). Arguments go to finbench freshness (e.g. BENCH_SECONDS=60
# BENCH_SCHEDULE_SECONDS=60 with --rate 100 --reference-seconds 2 for a short run). After the
# parts of commit -> gold it prints the cut build by build beside the newest commit each RAW table
# (transactions, accounts, transaction_metadata) held at the build's start (docs/operations.md).
# FIN_FRESHNESS_BENCH names another finbench driver of the same stack (snapshot-freshness.sh); it
# runs once, with builds following loads. BENCH_KEEP_LOGS=1 keeps the stack's logs and dbt's
# console log (each node's time in each build) in .fin/bench-artifacts/<bench> after a good run too;
# BENCH_LOG_LEVEL=INFO (default WARN) has the stack log each load, snapshot and build there.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/postgres.sh
bash scripts/venv.sh >/dev/null
go build -o bin/ ./cmd/fin ./cmd/finbench
bench=${FIN_FRESHNESS_BENCH:-freshness}

up_pid=""
work=""
drop() {
  psql -X -q "$admin" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$slot'" \
    -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
cleanup() {
  status=$?
  if [ -n "$work" ]; then
    keep_logs "$status" "$bench" "$work/up.out" "$FIN_STATE_DIR/logs" "$FIN_STATE_DIR/dbt/logs/console.log"
  fi
  stack_down
  [ -n "$work" ] && drop && rm -rf "$work"
  work=""
}
trap cleanup EXIT

# phase NAME BUILD_ON_LOAD SECONDS [finbench flags...] runs one stack and one finbench run on it.
phase() {
  local name=$1 on_load=$2 seconds=$3
  shift 3
  throwaway_stack "$name"
  mkdir -p "$FIN_STATE_DIR"
  drop
  psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null
  log "fin up --no-generate (dbt schedule $FIN_DBT_SCHEDULE, build on load: $on_load)"
  LOG_LEVEL=${BENCH_LOG_LEVEL:-WARN} FIN_DBT_BUILD_ON_LOAD=$on_load stack_up "$work/up.out" --no-generate
  LOG_LEVEL=WARN bin/finbench "$bench" --seconds "$seconds" "$@"
  cleanup
}

phase bench_fresh true "${BENCH_SECONDS:-300}" "$@"
if [ "$bench" = freshness ] && [ "${BENCH_SCHEDULE_SECONDS:-120}" != 0 ]; then
  log "the reference: gold on the schedule only"
  phase bench_sched false "${BENCH_SCHEDULE_SECONDS:-120}" --schedule-only "$@"
fi
