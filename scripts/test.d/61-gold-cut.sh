#!/usr/bin/env bash
# Gold is a consistent cut (issue 16, item 4): a throwaway `fin up --no-generate` with builds
# following loads; `finbench cut` commits transfers (asking 500/s; the rate reached is printed)
# for FIN_TEST_CUT_SECONDS (default 75) and, after every dbt build, checks that every account's
# current balance in gold.dim_accounts equals the sum of its postings in gold.fct_postings and that
# gold.cut moves forward. Arguments go to finbench cut (--require-cut=false checks balances only,
# which shows the torn builds of models without a cut).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

go build -o bin/ ./cmd/fin ./cmd/finbench
throwaway_stack cut
mkdir -p "$FIN_STATE_DIR"
up_pid=""
cleanup() {
  status=$?
  if [ "$status" != 0 ]; then # keep the logs of a failed run
    mkdir -p "$FIN_ROOT/.fin/test-artifacts/gold-cut"
    cp -r "$work/up.out" "$FIN_STATE_DIR/logs" "$FIN_ROOT/.fin/test-artifacts/gold-cut/" 2>/dev/null || true
    log "logs kept in .fin/test-artifacts/gold-cut"
  fi
  stack_down
  if [ "$status" != 0 ]; then # and the warehouse and RAW as they were, to look at the torn rows
    cp "$FIN_STATE_DIR"/warehouse.duckdb "$FIN_STATE_DIR"/raw_store.duckdb "$FIN_ROOT/.fin/test-artifacts/gold-cut/" 2>/dev/null || true
  fi
  drop_throwaway
  rm -rf "$work"
}
trap cleanup EXIT
drop_throwaway
psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null

log "fin up --no-generate (dbt as loads commit, schedule $FIN_DBT_SCHEDULE)"
LOG_LEVEL=${FIN_TEST_LOG_LEVEL:-WARN} FIN_DBT_BUILD_ON_LOAD=true stack_up "$work/up.out" --no-generate
LOG_LEVEL=WARN bin/finbench cut --seconds "${FIN_TEST_CUT_SECONDS:-75}" "$@"
