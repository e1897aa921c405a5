#!/usr/bin/env bash
# History reads while dbt builds (histread): the whole stack (`fin up --rate BENCH_RATE`, default
# 100 operations/s of the generator, on ephemeral ports and a throwaway database with a small
# first data set), and one reader after another for BENCH_SECONDS (default 120) once the first
# build has published gold: GET /customers/{id}/history and GET /customers/{id}?as_of=now in turn,
# over 50 customers, each timed by curl (the API answers 503 after historyTimeout, 10 s). Run with
# builds following loads (the default), then, as the reference, on the schedule only
# (FIN_DBT_BUILD_ON_LOAD=false, FIN_DBT_SCHEDULE default rate(1 minute)). Prints each read's p50,
# p95 and max, and the 503s, beside the reference, and the builds each run started (a 404, a
# customer the generator deleted, is an answer).
# Each run also prints what the stack's log says its publications for history reads took, if any
# (main's tree has none). BENCH_TAG (default bench) prefixes the throwaway databases' names.
# BENCH_KEEP_LOGS=1 keeps each run's reads and logs in .fin/bench-artifacts/histread.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/postgres.sh
bash scripts/venv.sh >/dev/null
go build -o bin/ ./cmd/fin
seconds=${BENCH_SECONDS:-120}
rate=${BENCH_RATE:-100}
results=$(mktemp -d)
up_pid=""
work=""
cleanup() {
  status=$?
  if [ -n "$work" ]; then
    keep_logs "$status" histread "$work/up.out" "$FIN_STATE_DIR/logs" "$results"
  fi
  stack_down
  [ -n "$work" ] && drop_throwaway && rm -rf "$work"
  work=""
}
trap 'cleanup; rm -rf "$results"' EXIT

# read_once PATH prints the read's seconds and status.
read_once() {
  curl -s -o /dev/null --max-time 30 -w '%{time_total} %{http_code}\n' -H "Authorization: Bearer $token" "http://$API_ADDR$1" \
    || echo "30 000"
}

# published succeeds once an as_of read answers from a cut (the first build has published gold).
published() { [ "$(read_once "/customers/${ids[0]}?as_of=$(date -u +%FT%TZ)" | cut -d' ' -f2)" = 200 ]; }

# phase NAME BUILD_ON_LOAD runs one stack and the reader on it; its reads go to $results/NAME.
phase() {
  local name=$1 on_load=$2 i=0 end
  throwaway_stack "$name"
  mkdir -p "$FIN_STATE_DIR"
  drop_throwaway
  psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null
  printf 'seed: 7\ncustomers: 300\naccounts: 450\ntransactions: 6000\n' >"$work/config.yaml"
  bin/fin generate --once --config "$work/config.yaml" >/dev/null
  log "fin up --rate $rate (dbt schedule $FIN_DBT_SCHEDULE, build on load: $on_load)"
  LOG_LEVEL=INFO FIN_DBT_BUILD_ON_LOAD=$on_load stack_up "$work/up.out" --config "$work/config.yaml" --rate "$rate"
  token=$(bin/fin token --scopes bank:read)
  mapfile -t ids < <(psql -X -At "$DATABASE_URL" -c "SELECT customer_id FROM customers ORDER BY customer_id LIMIT 50")
  wait_for "the first build's gold" 300 900 published dbt_progress
  log "reading history for $seconds s"
  end=$((SECONDS + seconds))
  while ((SECONDS < end)); do
    id=${ids[i % ${#ids[@]}]}
    if ((i % 2)); then read_once "/customers/$id?as_of=$(date -u +%FT%TZ)"; else read_once "/customers/$id/history"; fi
    i=$((i + 1))
  done >"$results/$name"
  grep -c 'RAW snapshot for dbt' "$FIN_STATE_DIR/logs/fin-up.log" >"$results/$name.builds" || true
  grep 'published the build for history reads' "$FIN_STATE_DIR/logs/fin-up.log" | grep -o '"took_s":[0-9.e-]*' |
    sed 's/.*://' | sort -g | awk '{ t[NR] = $1 } END { if (NR) printf "%d publications: median %.3f s, max %.3f s", NR, t[int(NR / 2 + 1)], t[NR] }' >"$results/$name.publish" || true
  cleanup
}

# summary FILE prints the reads' p50, p95, max, their count and the 503s.
summary() {
  sort -n "$1" | awk -v builds="$(cat "$1.builds" 2>/dev/null || echo 0)" '
    { t[NR] = $1; if ($2 == 503) u++; else if ($2 != 200 && $2 != 404) o++ }
    END { printf "p50 %.3f s, p95 %.3f s, max %.3f s, %d reads, %d answered 503, %d other errors, %d builds started",
      t[int(NR * 0.5 + 0.5)], t[int(NR * 0.95 + 0.5)], t[NR], NR, u, o, builds }'
}

tag=${BENCH_TAG:-bench}
phase "${tag}_histload" true
phase "${tag}_histsched" false
load_avg=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'history reads under fin up --rate %s for %s s:\n  builds following loads  %s\n  schedule only (ref.)    %s\n' \
  "$rate" "$seconds" "$(summary "$results/${tag}_histload")" "$(summary "$results/${tag}_histsched")"
printf '  publications for history reads, following loads: %s; schedule only: %s\n' \
  "$(cat "$results/${tag}_histload.publish")" "$(cat "$results/${tag}_histsched.publish")"
p95() { sort -n "$1" | awk '{ t[NR] = $1 } END { print t[int(NR * 0.95 + 0.5)] }'; }
printf '  p95 ratio (following loads / schedule only) %s; load average at the end %s\n' \
  "$(awk -v a="$(p95 "$results/${tag}_histload")" -v b="$(p95 "$results/${tag}_histsched")" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" "$load_avg"
