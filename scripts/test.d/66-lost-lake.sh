#!/usr/bin/env bash
# The lost-lake scenario of issue 14, end to end, as a new user meets it: the Postgres cluster and
# its replication slot outlive the lake and the warehouse.
#  (a) fin up, write, stop, remove the state dir (what `make clean` removes), fin up again:
#      `fin reconcile` green with no manual step;
#  (d) that re-snapshot reads a 100,000-row table while the generator streams;
#  (c) the same again with a kill -9 in the middle of the re-snapshot, and a restart;
#  (b) a second checkout (its own state dir) sharing the cluster and the slot name: green there,
#      and back in the first one, whose lake missed what the second consumed: re-snapshotted,
#      and reconcile green there, rows deleted in the gap included (the snapshots' windows end
#      them), and A's dbt builds green with its history ending them too.
# It needs the capture to snapshot again, online, when the lake holds no completed snapshot from
# this source (without that, reconcile reports the rows as LOST).
# On failure (or with FIN_TEST_KEEP=1) the outputs and each checkout's logs and warehouse files
# are kept in .fin/test-artifacts/lost-lake.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

go build -o bin/fin ./cmd/fin
throwaway_stack lostlake
up_pid="" gen_pid=""
state_a=$work/checkout-a/.fin state_b=$work/checkout-b/.fin
cleanup() {
  status=$?
  [ -n "$gen_pid" ] && kill "$gen_pid" 2>/dev/null
  stack_down KILL
  if [ "$status" != 0 ] || [ -n "${FIN_TEST_KEEP:-}" ]; then
    # the outputs, and each checkout's logs and warehouse files (dbt's and the capture's logs,
    # the failing rows), to look at after the fact
    keep=$FIN_ROOT/.fin/test-artifacts/lost-lake
    rm -rf "$keep" && mkdir -p "$keep"
    cp -r "$work"/*.out "$keep/" 2>/dev/null || true
    for c in a b; do
      [ -d "$work/checkout-$c/.fin" ] || continue
      mkdir -p "$keep/checkout-$c"
      cp -r "$work/checkout-$c/.fin/logs" "$work/checkout-$c/.fin"/*.duckdb "$keep/checkout-$c/" 2>/dev/null || true
    done
    log "logs kept in .fin/test-artifacts/lost-lake"
  fi
  drop_throwaway
  rm -rf "$work"
}
trap cleanup EXIT
drop_throwaway
psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null

rows=${FIN_TEST_SNAPSHOT_ROWS:-100000}
big_config "$work/config.yaml" 11 "$rows"

# checkout DIR: the state of one checkout of the project (FIN_STATE_DIR, its warehouse).
checkout() {
  export FIN_STATE_DIR=$1 WAREHOUSE_PATH=$1/warehouse.duckdb
  mkdir -p "$FIN_STATE_DIR"
}
gen_start() { # the generator's continuous activity, straight into Postgres
  bin/fin generate --config "$work/config.yaml" >>"$work/gen.out" 2>&1 &
  gen_pid=$!
}
gen_stop() {
  kill -INT "$gen_pid"
  wait "$gen_pid" 2>/dev/null || true
  gen_pid=""
}
generate_for() { # seconds
  gen_start
  sleep "$1"
  gen_stop
}
reconciled() { # name: fin reconcile must be green
  wait_captured
  bin/fin reconcile --wait 240s >"$work/reconcile-$1.out" 2>&1 \
    || die "$1: fin reconcile is not green: $(grep -E '^(lost|lag|differ):|changes' "$work/reconcile-$1.out" | tail -3)"
  log "$1: reconcile green"
}

log "a data set of $rows transactions"
bin/fin generate --once --config "$work/config.yaml" >/dev/null

log "checkout A: fin up, write, stop"
checkout "$state_a"
stack_up "$work/up-a.out" --no-generate --config "$work/config.yaml"
generate_for 10
reconciled a-first-run
stack_down INT

log "(a)+(d) make clean in A, fin up again, the generator streaming through the re-snapshot"
rm -rf "$state_a"
checkout "$state_a"
gen_start # before the stack, so the capture's re-snapshot runs while changes stream
stack_up "$work/up-a.out" --no-generate --config "$work/config.yaml"
sleep 20
gen_stop
reconciled a-after-clean
stack_down INT

log "(c) make clean in A again, and kill -9 in the middle of the re-snapshot"
rm -rf "$state_a"
checkout "$state_a"
gen_start
stack_up "$work/up-a2.out" --no-generate --config "$work/config.yaml"
kill_during_snapshot transactions "$rows" "$work/up-a2.out"
stack_up "$work/up-a.out" --no-generate --config "$work/config.yaml"
sleep 10
gen_stop
reconciled a-after-kill
stack_down INT

log "(b) checkout B: its own state, the same cluster, database and slot"
checkout "$state_b"
stack_up "$work/up-b.out" --no-generate --config "$work/config.yaml"
generate_for 10
reconciled b-second-checkout
stack_down INT

# Back in A, whose lake holds a completed snapshot from this source but missed what B consumed
# from the shared slot. The capture notices (the slot is past the delivered_lsn of A's manifest)
# and snapshots every table again, which repairs every insert and update of the gap; the
# generator also deletes customers (prospects), deletes B consumed: each table's snapshot window
# (raw.snapshot_windows) ends those rows, in reconcile and in the history.
log "(b) back in A, whose lake missed what B consumed from the shared slot"
checkout "$state_a"
seen=$(wc -l <"$state_a/logs/fin-up.log") # the log of A's earlier runs
stack_up "$work/up-a.out" --no-generate --config "$work/config.yaml"
generate_for 5
reconciled a-after-b
windows=$(tail -n +"$((seen + 1))" "$state_a/logs/fin-up.log" | grep -c 'snapshot window written beside the data' || true)
[ "$windows" -ge 3 ] || die "A's return wrote $windows snapshot windows, want one per table"
# The history agrees once a scheduled dbt build has run: the customers current in it are
# exactly Postgres's (the generator has stopped), deletes of B's gap ended by the windows even
# when a build ran between a window's rows and its record; and the builds pass every test, among
# them balances_match_postings over the postings B's gap held (re-read after the accounts: the
# windows' gap places them).
psql -X -qAt "$DATABASE_URL" -c "SELECT customer_id FROM customers" | LC_ALL=C sort >"$work/pg-customers"
history_agrees() {
  bin/fin sql "SELECT customer_id FROM silver.customers_history WHERE is_current AND NOT is_deleted ORDER BY 1" \
    2>/dev/null | tail -n +2 | LC_ALL=C sort >"$work/history-customers" || true
  cmp -s "$work/pg-customers" "$work/history-customers"
}
history_progress() {
  echo "$(comm -13 "$work/pg-customers" "$work/history-customers" | wc -l) customers current that Postgres lacks," \
    "$(comm -23 "$work/pg-customers" "$work/history-customers" | wc -l) missing; dbt's log $(dbt_progress) bytes"
}
WAIT_POLL=5 wait_for "A's history current customers equal to Postgres's" 300 1200 history_agrees history_progress
a_log() { tail -n +"$((seen + 1))" "$state_a/logs/fin-up.log"; }
# (a build selected from one table's loads may fail a test reading another entity's models as
# they stand, and is followed at once by a full build: only what a build ends with counts)
failed=$(a_log | grep -E '"msg":"dbt (node failed|build failed)"' || true)
[ -z "$failed" ] || die "A's dbt builds after the gap failed: $(printf '%s\n' "$failed" | head -5)"
built=$(a_log | grep -c '"msg":"dbt build"' || true)
[ "$built" -ge 1 ] || die "no dbt build completed on A after the gap"
gap_posted=$(bin/fin sql "SELECT count(*) FROM gold.fct_postings p JOIN silver.stg_transactions_changes c ON c.transaction_id = p.transaction_id AND c.lsn = p.lsn AND c.op = 'r' AND c.snapshot = 'incremental'" | tail -1)
log "(b) A's $built dbt builds after the gap passed every test; $gap_posted postings first read by a re-snapshot"
ended=$(bin/fin sql "SELECT count(*) FROM silver.customers_history WHERE snapshot = 'inferred'" | tail -1)
log "(b) A's history: the $(wc -l <"$work/pg-customers") customers of Postgres are current, $ended ended by a snapshot or its window (inferred deletes)"
stack_down INT
log "lost-lake scenario passed"
