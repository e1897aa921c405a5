#!/usr/bin/env bash
# Benchmarks of the banking API (issue 3), each printed beside its reference from this same run:
#   1. GET /accounts/{id} at 16 connections (wrk)   vs  pgbench -S -M prepared -c 16
#   2. POST /transactions transfers at 16 conns     vs  pgbench tpcb-like -M prepared -c 16
#   3. the API Lambda bootstrap (arm64, stripped)   vs  the 15 MB budget and a hello-world bootstrap
#   4. cold init under aws-lambda-rie               vs  the 100 ms budget and a hello-world bootstrap
# Each side gets its own throwaway database on the project's cluster, dropped at the end. fin api
# runs with its defaults: Go on half the cores, Postgres being on this machine (docs/api.md).
# BENCH_SECONDS (default 10) sets the length of each load run; BENCH_ROUNDS (default 3) how many
# times each pair runs, in turn (the machine is shared: the median round is reported).
# FIN_API_FLAGS adds flags to fin api (e.g. "-procs 2 -account-pipeline 0"), to set one sizing beside
# another in alternating runs; the summary prints them.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

secs=${BENCH_SECONDS:-10}
pgbin=$FIN_PG_BIN
export PGPASSFILE=$FIN_PGPASSFILE PGHOST=127.0.0.1 PGPORT=$FIN_PG_PORT PGUSER=fin

command -v wrk >/dev/null || apt_install wrk
rie=$(bash scripts/rie.sh)

work=$(mktemp -d)
api_db="fin_bench_api_$$"
pgb_db="fin_bench_pgbench_$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$pgbin/psql" -X -q -d fin -c "DROP DATABASE IF EXISTS $api_db WITH (FORCE)" -c "DROP DATABASE IF EXISTS $pgb_db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$pgbin/createdb" "$api_db"
"$pgbin/createdb" "$pgb_db"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# --- the API on its own database ---------------------------------------------------------------
go build -o bin/fin ./cmd/fin
export FIN_JWT_SECRET
FIN_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
addr="127.0.0.1:$(free_port)"
# fin api reaches Postgres over the cluster's Unix socket, as a local client should: a round trip
# there costs client and server less CPU than over loopback TCP. pgbench, the reference, connects
# over TCP (PGHOST above), as it always has; wrk reaches fin api over TCP. A cluster whose
# pg_hba.conf predates scripts/postgres.sh's socket line is reached over TCP, and said so.
api_url="postgres://fin@/$api_db?host=$FIN_PGDATA&port=$FIN_PG_PORT&sslmode=disable"
if ! "$pgbin/psql" -X -Atq "$api_url" -c 'SELECT 1' >/dev/null 2>&1; then
  log "fin cannot log in over the Unix socket (run scripts/postgres.sh): fin api uses TCP"
  api_url="postgres://fin@127.0.0.1:$FIN_PG_PORT/$api_db?sslmode=disable"
fi
# Per-request log lines off (warn level): the reference writes none either.
read -ra api_flags <<<"${FIN_API_FLAGS:-}"
DATABASE_URL="$api_url" LOG_LEVEL=warn \
  bin/fin api -addr "$addr" -conns 16 "${api_flags[@]}" 2>"$work/api.log" &
api_pid=$!
pids+=("$api_pid")
for _ in $(seq 100); do
  curl -sf "http://$addr/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://$addr/healthz" >/dev/null || die "fin api did not start: $(tail -5 "$work/api.log")"
base="http://$addr"
token=$(bin/fin token -scopes bank:read,bank:write -subject bench)
auth="Authorization: Bearer $token"

customer=$(curl -sf -X POST "$base/customers" -H "$auth" -H 'Content-Type: application/json' \
  -d '{"first_name":"Bench","last_name":"Mark","email":"bench@example.com"}' | sed 's/.*"customer_id":"\([^"]*\)".*/\1/')
accounts=()
for _ in $(seq 100); do
  accounts+=("$(curl -sf -X POST "$base/accounts" -H "$auth" -H 'Content-Type: application/json' \
    -d "{\"customer_id\":\"$customer\",\"account_type\":\"CHECKING\",\"currency\":\"USD\",\"opening_deposit\":\"1000000.00\"}" \
    | sed 's/.*"account_id":"\([^"]*\)".*/\1/')")
done
ids=$(printf '"%s",' "${accounts[@]}")

# wrk_script FILE MAKE: a wrk script whose init formats 1000 requests with the Lua expression MAKE
# (it may use ids, the accounts) and whose request replays them in turn, so wrk spends its CPU on
# the load, not on formatting.
wrk_script() {
  cat >"$1" <<LUA
local ids = { ${ids%,} }
local reqs, n = {}, 0
init = function()
  wrk.headers["Authorization"] = "Bearer $token"
  for i = 1, 1000 do reqs[i] = $2 end
end
request = function()
  n = n % #reqs + 1
  return reqs[n]
end
-- a transfer between two different accounts
function transfer()
  local a = math.random(#ids)
  local b = math.random(#ids - 1)
  if b >= a then b = b + 1 end
  -- a headers table replaces wrk.headers, so it carries init's token along
  local headers = { ["Authorization"] = wrk.headers["Authorization"], ["Content-Type"] = "application/json" }
  return wrk.format("POST", "/transactions", headers,
    '{"account_id":"' .. ids[a] .. '","related_account_id":"' .. ids[b] .. '","transaction_type":"TRANSFER","amount":"0.01"}')
end
LUA
}
wrk_script "$work/get.lua" 'wrk.format("GET", "/accounts/" .. ids[math.random(#ids)])'
wrk_script "$work/transfer.lua" 'transfer()'

# ticks PID...: the user and system CPU of those processes so far, in clock ticks (/proc/PID/stat
# fields 14 and 15; a process gone counts 0)
ticks() { local p; for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null || true; done | awk '{ t += $14 + $15 } END { print t + 0 }'; }
# backends_until_exit DB PID: the CPU of the backends connected to DB, in ticks, from their start
# until PID exits: each one's /proc ticks read every 0.1 s by its process title ("postgres: USER
# DB ..."), its last reading counted (what a backend spends in its last 0.1 s is missed: about 1%
# of a 10 s run). pgbench's backends start with the run and end with it. Not the postmaster's
# exited children: on a shared cluster those are every database's, other sessions' included.
backends_until_exit() {
  local p t
  local -A last=()
  while kill -0 "$2" 2>/dev/null; do
    for p in $(pgrep -f -- "^postgres: [^ ]+ $1 "); do
      t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) && last[$p]=$t
    done
    sleep 0.1
  done
  printf '%s\n' 0 "${last[@]}" | awk '{ t += $1 } END { print t }'
}
# How each side is driven, in one place: the rounds, their warm-up and the summary line say the same.
wrk_args=(-t2 -c16)
pgbench_args=(-n -M prepared -c 16 -j 2)
# backends DB: the pids of the Postgres backends connected to DB
backends() { "$pgbin/psql" -X -Atq -d fin -c "SELECT pid FROM pg_stat_activity WHERE datname = '$1'"; }
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; } # the machine's busy ticks
# idles: how many times the machine's cores have gone idle so far (cpuidle's entries, every
# state). In a virtual machine each one is a halt that the host must wake (an exit and an
# interrupt): a run that keeps the cores busy pays none, one that leaves gaps pays one a gap.
# "n/a" on a kernel without cpuidle.
idles() { cat /sys/devices/system/cpu/cpu*/cpuidle/state*/usage 2>/dev/null | awk '{ s += $1; k++ } END { if (k) print s; else print "n/a" }'; }
# between BEFORE AFTER N: (AFTER - BEFORE) / N, "n/a" when either count is
between() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (a != "n/a" && b != "n/a" && n > 0) printf "%.2f", (b - a) / n; else print "n/a" }'; }
hz=$(getconf CLK_TCK)
per() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }'; }
# wrk_run SCRIPT: prints "<requests/s> <p99 ms> <non-2xx count> <CPU per request, us: fin api,
# its Postgres backends, wrk, the whole machine> <the cores' idle entries per request>"
wrk_run() {
  local a0 a1 b0 b1 m0 m1 i0 i1 be
  mapfile -t be < <(backends "$api_db")
  a0=$(ticks "$api_pid"); b0=$(ticks "${be[@]}"); m0=$(busy); i0=$(idles)
  /usr/bin/time -f '%U %S' -o "$work/wrk.time" wrk "${wrk_args[@]}" -d"${secs}s" --latency -s "$1" "$base" >"$work/wrk.out" 2>&1 \
    || die "wrk failed: $(cat "$work/wrk.out")"
  # the backends now: the pool may have opened more during the run (all their CPU counts)
  mapfile -t be < <(backends "$api_db")
  a1=$(ticks "$api_pid"); b1=$(ticks "${be[@]}"); m1=$(busy); i1=$(idles)
  local rps p99 bad n wrk_ticks
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
  p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }; print v }' "$work/wrk.out")
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$work/wrk.out")
  n=$(awk '/requests in/ { print $1 }' "$work/wrk.out")
  wrk_ticks=$(awk -v hz="$hz" '{ printf "%.0f", ($1 + $2) * hz }' "$work/wrk.time")
  echo "$rps ${p99:-n/a} ${bad:-0} $(per $((a1 - a0)) "$n")/$(per $((b1 - b0)) "$n")/$(per "$wrk_ticks" "$n")/$(per $((m1 - m0)) "$n") $(between "$i0" "$i1" "$n")"
}
# pgbench_run ARGS...: prints "<tps> <average latency ms> <CPU per transaction, us: Postgres's
# backends, pgbench, the whole machine> <the cores' idle entries per transaction>"
pgbench_run() {
  local m0 m1 i0 i1 n pgb_ticks be_ticks
  m0=$(busy); i0=$(idles)
  /usr/bin/time -f '%U %S' -o "$work/pgb.time" "$pgbin/pgbench" "${pgbench_args[@]}" -T "$secs" "$@" "$pgb_db" >"$work/pgb.out" 2>&1 &
  local pgb_pid=$!
  be_ticks=$(backends_until_exit "$pgb_db" "$pgb_pid")
  wait "$pgb_pid" || die "pgbench failed: $(tail -5 "$work/pgb.out")"
  m1=$(busy); i1=$(idles)
  n=$(awk '/^number of transactions actually processed:/ { split($NF, a, "/"); print a[1] }' "$work/pgb.out")
  pgb_ticks=$(awk -v hz="$hz" '{ printf "%.0f", ($1 + $2) * hz }' "$work/pgb.time")
  echo "$(awk '/^tps = / {print $3}' "$work/pgb.out") $(awk '/^latency average/ {print $4}' "$work/pgb.out")" \
    "$(per "$be_ticks" "$n")/$(per "$pgb_ticks" "$n")/$(per $((m1 - m0)) "$n") $(between "$i0" "$i1" "$n")"
}

log "pgbench -i -s 16 (the reference's own tables)"
"$pgbin/pgbench" -i -q -s 16 "$pgb_db" >/dev/null 2>&1 || die "pgbench -i failed"

# paired SCRIPT PGBENCH-ARGS...: the API under wrk and pgbench, in turn, $rounds times, the side
# that goes first alternating, so that a swing in the machine's other load hits both sides alike.
# Prints the round with the median ratio, "<ratio> <requests/s> <p99 ms> <tps> <latency ms>",
# then the non-2xx count of all rounds, every round's ratio, every round's CPU per request of
# the API's side and per transaction of pgbench's (us; the machine's other load moves them less
# than it moves the ratio), and every round's idle entries per request and per transaction.
paired() {
  local script=$1; shift
  local r rps p99 bad cpu idle tps lat pgcpu pgidle bad_total=0 rows=()
  # A short run of each side first, not counted: fin api's pool opens its connections and
  # pgbench's backends and tables warm up before anything is measured.
  wrk "${wrk_args[@]}" -d2s -s "$script" "$base" >/dev/null 2>&1 || true
  "$pgbin/pgbench" "${pgbench_args[@]}" -T 2 "$@" "$pgb_db" >/dev/null 2>&1 || true
  for r in $(seq "$rounds"); do
    if (( r % 2 )); then
      read -r rps p99 bad cpu idle < <(wrk_run "$script")
      read -r tps lat pgcpu pgidle < <(pgbench_run "$@")
    else
      read -r tps lat pgcpu pgidle < <(pgbench_run "$@")
      read -r rps p99 bad cpu idle < <(wrk_run "$script")
    fi
    bad_total=$((bad_total + ${bad:-0}))
    rows+=("$(ratio "$rps" "$tps") $rps $p99 $tps $lat $cpu $pgcpu $idle $pgidle")
  done
  local col
  printf '%s %s' "$(printf '%s\n' "${rows[@]}" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p" | cut -d' ' -f1-5)" "$bad_total"
  for col in 1 6 7 8 9; do
    printf ' %s' "$(printf '%s\n' "${rows[@]}" | awk -v c="$col" '{ printf "%s%s", sep, $c; sep = "," }')"
  done
  echo
}
rounds=${BENCH_ROUNDS:-3}

start_machine=$(machine_line)
# oldest_xact: the oldest transaction on the cluster that holds back what VACUUM and HOT pruning
# may remove (an XID or a snapshot; not this query's). On a shared cluster another session's long
# transaction, in any database, keeps every row version both sides' updates leave: the 100
# accounts' and pgbench_branches' chains then grow for the whole run, and each side's CPU per
# transaction with them (measured: 0.86 -> 2.0 ms of Postgres per transfer-shaped transaction in
# four 12 s runs at a load average of 18-20, while a test held a transaction open for 230 s;
# VACUUM removed nothing).
oldest_xact() {
  "$pgbin/psql" -X -Atq -d fin -c "SELECT coalesce((SELECT format('%s s old, database %s, %s', round(extract(epoch FROM now() - xact_start)), datname, state)
    FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
    ORDER BY xact_start LIMIT 1), 'none')"
}
# dead_versions DB TABLE: the row versions of TABLE that updates left and nothing removed yet,
# beside the updates (the statistics lag by up to a second)
dead_versions() {
  "$pgbin/psql" -X -Atq -d "$1" -c "SELECT n_dead_tup || ' of ' || n_tup_upd FROM pg_stat_user_tables WHERE relname = '$2'"
}
start_xact=$(oldest_xact)
# kernel_costs: the CPU a system call and a wake-up cost on this machine now (perf bench: a
# million getppid calls; 50,000 round trips between two processes over pipes, each two writes,
# two reads and two wake-ups), in us. Both sides of each ratio are made of these; their price
# is set by the host (another CPU, another hypervisor, other tenants) and moves a reference's
# rate with it, which no other figure here shows.
kernel_costs() {
  command -v perf >/dev/null || { echo "n/a (no perf)"; return; }
  local sc pp
  sc=$(/usr/bin/time -f '%U %S' perf bench syscall basic -l 1000000 2>&1 >/dev/null | awk 'END { printf "%.2f", ($1 + $2) }')
  pp=$(/usr/bin/time -f '%U %S' perf bench sched pipe -l 50000 2>&1 >/dev/null | awk 'END { printf "%.1f", ($1 + $2) / 50000 * 1e6 }')
  echo "a system call ${sc} us, a pipe round trip between two processes ${pp} us"
}
start_costs=$(kernel_costs)
log "GET /accounts/{id} at 16 connections and pgbench -S, in turn: $rounds rounds of ${secs}s each"
read -r get_ratio get_rps get_p99 sel_tps sel_lat get_bad get_rounds get_cpu get_pgcpu get_idle get_pgidle < <(paired "$work/get.lua" -S)
log "POST /transactions (transfer) at 16 connections and pgbench tpcb-like, in turn: $rounds rounds of ${secs}s each"
read -r post_ratio post_rps post_p99 tpcb_tps tpcb_lat post_bad post_rounds post_cpu post_pgcpu post_idle post_pgidle < <(paired "$work/transfer.lua" -b tpcb-like)

sleep 1 # the statistics of the last round
dead_accounts=$(dead_versions "$api_db" accounts)
dead_branches=$(dead_versions "$pgb_db" pgbench_branches)
end_xact=$(oldest_xact)

# The ledger must still add up after the load: 100 accounts x 1,000,000.00.
total=$("$pgbin/psql" -X -Atq -d "$api_db" -c "SELECT sum(balance) FROM accounts")
[ "$total" = "100000000.00" ] || die "after the transfer benchmark the balances sum to $total, not 100000000.00"

# --- Lambda bootstrap size and cold init ---------------------------------------------------------
mkdir -p "$FIN_STATE_DIR/bench/hello"
cat >"$FIN_STATE_DIR/bench/hello/main.go" <<'GO'
// A hello-world Lambda: the floor any Go function pays, as a reference for size and cold init.
package main

import "github.com/aws/aws-lambda-go/lambda"

func main() { lambda.Start(func() (string, error) { return "ok", nil }) }
GO
lambda_build() { # GOARCH PKG OUT
  CGO_ENABLED=0 GOOS=linux GOARCH="$1" go build -tags lambda.norpc,minicore_disabled -trimpath -ldflags='-s -w' -o "$3" "$2"
}
lambda_build arm64 ./functions/api "$work/arm64/api/bootstrap"
lambda_build arm64 "./${FIN_STATE_DIR#"$FIN_ROOT"/}/bench/hello" "$work/arm64/hello/bootstrap"
api_size=$(stat -c %s "$work/arm64/api/bootstrap")
hello_size=$(stat -c %s "$work/arm64/hello/bootstrap")

# aws-lambda-rie runs binaries of this machine's architecture: the same code, built for it.
host_arch=$(go env GOARCH)
lambda_build "$host_arch" ./functions/api "$work/host/api/bootstrap"
lambda_build "$host_arch" "./${FIN_STATE_DIR#"$FIN_ROOT"/}/bench/hello" "$work/host/hello/bootstrap"
# cold_init DIR EVENT: median of 5 fresh starts of "INIT REPORT(durationMs: X)", in ms
cold_init() {
  local dir=$1 event=$2 runs=()
  for _ in 1 2 3 4 5; do
    local p1 p2 pid
    p1=$(free_port); p2=$(free_port)
    (cd "$dir" && DATABASE_URL="postgres://fin@127.0.0.1:$FIN_PG_PORT/$api_db?sslmode=disable" \
      exec "$rie" --runtime-interface-emulator-address "127.0.0.1:$p1" --runtime-api-address "127.0.0.1:$p2" ./bootstrap) >"$work/rie.log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$p1") 2>/dev/null && break; sleep 0.1; done
    curl -sf -X POST "http://127.0.0.1:$p1/2015-03-31/functions/function/invocations" -d "$event" >"$work/invoke.out" \
      || die "invocation under aws-lambda-rie failed: $(tail -5 "$work/rie.log")"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    runs+=("$(grep -o 'INIT REPORT(durationMs: [0-9.]*' "$work/rie.log" | grep -o '[0-9.]*$')")
  done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n 3p
}
health='{"version":"2.0","rawPath":"/healthz","requestContext":{"http":{"method":"GET","path":"/healthz"},"requestId":"bench"}}'
api_init=$(cold_init "$work/host/api" "$health")
grep -q '"statusCode":200' "$work/invoke.out" || die "the API under aws-lambda-rie did not answer /healthz: $(cat "$work/invoke.out")"
hello_init=$(cold_init "$work/host/hello" '{}')

printf '\n%s (at the start)\n%s (at the end)\n' "$start_machine" "$(machine_line)"
printf 'CPU of %s (at the start)\n' "$start_costs"
printf 'oldest transaction on the cluster: %s (at the start), %s (after the load)\n' "$start_xact" "$end_xact"
# A request of the API costs more system calls than a transaction of pgbench (docs/api.md,
# "Other machines"): the kernel and its mitigations are among what differs between machines.
printf 'kernel %s; GOMAXPROCS %s; fin api flags: %s; spectre_v2: %s\n' "$(uname -r)" "${GOMAXPROCS:-unset}" "${FIN_API_FLAGS:-none}" \
  "$(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null || echo unknown)"
# How each side reaches Postgres: over a Unix socket a round trip costs both ends less CPU.
api_via=TCP
case $api_url in *"host=/"*) api_via="Unix socket" ;; esac
printf 'fin api to Postgres: %s; pgbench to Postgres: TCP 127.0.0.1 (%s, scale 16); wrk to fin api: TCP (%s)\n' \
  "$api_via" "${pgbench_args[*]}" "${wrk_args[*]}"
printf '%-58s %14s %14s %7s\n' "benchmark (API beside its reference, same run)" "API" "reference" "ratio"
printf '%-58s %14s %14s %7s\n' "GET /accounts/{id} vs pgbench -S -M prepared, 16 conns" "$get_rps/s" "$sel_tps/s" "$get_ratio"
printf '%-58s %14s %14s\n' "  latency p99 (API) / average (pgbench), ms" "$get_p99" "$sel_lat"
printf '%-58s %30s\n' "  ratio in each round (median round shown above)" "$get_rounds"
printf '%-58s %30s\n' "  CPU per GET, us: fin api/its Postgres/wrk/machine" "$get_cpu"
printf '%-58s %30s\n' "  CPU per pgbench -S: Postgres/pgbench/machine, us" "$get_pgcpu"
printf '%-58s %30s\n' "  cores gone idle per GET / per pgbench -S" "$get_idle / $get_pgidle"
printf '%-58s %14s %14s %7s\n' "POST /transactions transfer vs pgbench tpcb-like, 16" "$post_rps/s" "$tpcb_tps/s" "$post_ratio"
printf '%-58s %14s %14s\n' "  latency p99 (API) / average (pgbench), ms" "$post_p99" "$tpcb_lat"
printf '%-58s %30s\n' "  ratio in each round (median round shown above)" "$post_rounds"
printf '%-58s %30s\n' "  CPU per transfer, us: fin api/its Postgres/wrk/machine" "$post_cpu"
printf '%-58s %30s\n' "  CPU per tpcb-like: Postgres/pgbench/machine, us" "$post_pgcpu"
printf '%-58s %30s\n' "  cores gone idle per transfer / per tpcb-like" "$post_idle / $post_pgidle"
printf '%-58s %30s\n' "  row versions not removed: accounts / pgbench_branches" "$dead_accounts / $dead_branches"
printf '%-58s %14s %14s %7s\n' "bootstrap arm64 stripped, bytes vs 15 MB budget" "$api_size" "15000000" "$(ratio "$api_size" 15000000)"
printf '%-58s %14s %14s %7s\n' "  vs a hello-world Go Lambda" "$api_size" "$hello_size" "$(ratio "$api_size" "$hello_size")"
printf '%-58s %14s %14s %7s\n' "cold init under aws-lambda-rie ($host_arch), ms vs 100 ms" "$api_init" "100" "$(ratio "$api_init" 100)"
printf '%-58s %14s %14s %7s\n' "  vs a hello-world Go Lambda, ms" "$api_init" "$hello_init" "$(ratio "$api_init" "$hello_init")"
if [ "${get_bad:-0}" != 0 ] || [ "${post_bad:-0}" != 0 ]; then
  log "warning: non-2xx answers during the load: GET $get_bad, POST $post_bad"
fi
