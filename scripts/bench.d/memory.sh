#!/usr/bin/env bash
# Memory over time (issue 16, item 5): `fin up --rate 200` on a fresh throwaway database for
# BENCH_MEMORY_MINUTES (default 30), its RSS sampled every 10 s; printed: the RSS at
# BENCH_MEMORY_REF_MINUTES (default 5) beside the RSS at the end (target: at most 1.1x), each the
# mean of the samples of the minute before it (a reconcile pass or a dbt snapshot swings a single
# sample by 100 MB), the peak, and the dbt worker's RSS (a process of its own). A heap profile of
# fin up is taken at both points and at the run's middle (BENCH_MEMORY_MID_MINUTES, default half
# the run) by SIGUSR1, and kept in .fin/bench-artifacts/memory/ with the samples:
# `go tool pprof -top -diff_base heap-5min.pprof bin/fin heap-15min.pprof` shows what grew. The Go
# collector's CPU is printed beside the process's (what GOMEMLIMIT costs).
# --short runs 6 minutes against the RSS at 2 (a quick look; the target is for the long run).
# --backlog runs 8 minutes against the RSS at 2 and forces a backlog caught up: at minute 3 it
# stops fin up (SIGSTOP) for BENCH_MEMORY_PAUSE seconds (default 120) while a second `fin generate`
# writes at the same rate, then lets it go on, so the capture, the broker and the landing take the
# WAL of those minutes as fast as they can.
# The rate the generator reached is printed beside its target, over the run and minute by minute;
# a run whose generator fell below 95% of the rate asked from minute 1 on fails (it did not
# measure what the target is about). Printed too: what the stack's DuckDB holds (duckdb_memory(),
# at both points) and how many of its "Out of Memory" errors fin up logged
# (FIN_WAREHOUSE_MEMORY_LIMIT too tight); fin up's output is kept, and its log file (at
# BENCH_MEMORY_LOG_LEVEL, default WARN; INFO logs each RAW snapshot's reopen and the deferred
# ones). The anonymous memory is split by holder at both points (Go's heap, glibc's malloc
# arenas, the rest: mostly DuckDB's jemalloc), and once a minute with DuckDB's tags and the sizes
# of the stack's DuckDB files and WALs (a slope, not only two points), and how many of the generator's writers were busy
# on average says whether they, not the pacing, bounded the rate.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

minutes=${BENCH_MEMORY_MINUTES:-30}
ref=${BENCH_MEMORY_REF_MINUTES:-5}
pause_at=0 pause=${BENCH_MEMORY_PAUSE:-120}
case "${1:-}" in
  --short) minutes=6 ref=2 ;;
  --backlog) minutes=8 ref=2 pause_at=180 ;;
esac
mid=${BENCH_MEMORY_MID_MINUTES:-$((minutes / 2))}
rate=${BENCH_MEMORY_RATE:-200}

bash scripts/postgres.sh
bash scripts/venv.sh >/dev/null
go build -o bin/ ./cmd/fin
throwaway_stack bench_memory
mkdir -p "$FIN_STATE_DIR"
out=$FIN_ROOT/.fin/bench-artifacts/memory
mkdir -p "$out"
rm -f "$out"/heap-*.pprof "$out/rss.tsv"

up_pid="" gen_pid=""
cleanup() {
  [ -z "$gen_pid" ] || kill -INT "$gen_pid" 2>/dev/null || true
  [ -z "$up_pid" ] || kill -CONT "$up_pid" 2>/dev/null || true
  cp "$work/up.out" "$out/" 2>/dev/null || true
  cp "$FIN_STATE_DIR/logs/fin-up.log" "$out/" 2>/dev/null || true
  stack_down
  drop_throwaway
  rm -rf "$work"
}
trap cleanup EXIT
drop_throwaway
psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null

# rss_kb PID [FIELD]: the resident set of PID in kB (0 when it is gone); FIELD RssAnon leaves out
# the pages of mapped files (the binary's own, about 85 MB, which the kernel may drop).
rss_kb() { awk -v f="${2:-VmRSS}:" '$1 == f {print $2; found=1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
# children_rss_kb PID: the resident sets of PID's descendants (the dbt worker), summed.
children_rss_kb() {
  local total=0 c
  for c in $(pgrep -P "$1" 2>/dev/null); do
    total=$((total + $(rss_kb "$c") + $(children_rss_kb "$c")))
  done
  echo "$total"
}
# anon_split PID: fin up's anonymous resident memory in MB by who holds it, from its mappings: Go's
# heap (the runtime's arenas sit below the shared-library area), glibc's malloc (its [heap] and
# the 64 MiB-aligned heaps of its other arenas: the C++ side of DuckDB, cgo), and the rest (DuckDB's
# own allocator, jemalloc, which holds its buffers; thread stacks). A heuristic for x86-64 Linux.
anon_split() {
  python3 - "$1" <<'PY' 2>/dev/null || echo "(not read)"
import re, sys
cls, blocks, cur = {"go": 0, "glibc": 0, "other": 0}, {}, None
for line in open(f"/proc/{sys.argv[1]}/smaps"):
    m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$", line)
    if m:
        lo, hi, perms, inode, name = int(m[1], 16), int(m[2], 16), m[3], m[4], m[5].strip()
        cur = None if inode != "0" or (name and name != "[heap]") else ("glibc" if name else (lo, hi, perms))
    elif line.startswith("Rss:") and cur:
        kb = int(line.split()[1])
        if cur == "glibc":
            cls["glibc"] += kb
        elif cur[0] < 0x7E0000000000:
            cls["go"] += kb
        else:
            blocks.setdefault(cur[0] >> 26, []).append(cur + (kb,))
for b, maps in blocks.items():
    arena = min(x[0] for x in maps) == b << 26 and sum(x[1] - x[0] for x in maps) == 64 << 20 and any(x[2].startswith("---") for x in maps)
    cls["glibc" if arena else "other"] += sum(x[3] for x in maps)
print(" ".join(f"{k} {v // 1024}" for k, v in cls.items()))
PY
}
# window_mean SECONDS [COLUMN]: the mean RSS (kB; column 2, or 4 for the anonymous part) of the
# samples of the minute up to SECONDS.
window_mean() {
  awk -v to="$1" -v c="${2:-2}" 'NR > 1 && $1 > to - 60 && $1 <= to { sum += $c; n++ } END { printf "%d", n ? sum / n : 0 }' "$out/rss.tsv"
}
# heap_dump NAME: a heap profile of fin up, copied out of its state folder as NAME.
heap_dump() {
  local before
  before=$(find "$FIN_STATE_DIR" -maxdepth 1 -name 'heap-*.pprof' | wc -l)
  kill -USR1 "$up_pid"
  for _ in $(seq 50); do
    [ "$(find "$FIN_STATE_DIR" -maxdepth 1 -name 'heap-*.pprof' | wc -l)" -gt "$before" ] && break
    sleep 0.2
  done
  sleep 0.5
  cp "$(find "$FIN_STATE_DIR" -maxdepth 1 -name 'heap-*.pprof' | sort | tail -1)" "$out/$1.pprof"
}

# duck_mem: what the stack's DuckDB holds, by tag, in MB (memory, spilled), through fin sql.
duck_mem() {
  timeout 30 bin/fin sql "select tag, memory_usage_bytes // 1048576 as mb, temporary_storage_bytes // 1048576 as spilled_mb
    from duckdb_memory() where memory_usage_bytes + temporary_storage_bytes >= 1048576 order by 2 desc" 2>/dev/null |
    tail -n +2 | tr '\n' ' ' || echo "(no answer)"
}

# files_mb: the sizes in MB of the stack's DuckDB files (RAW, the publication) and their WALs.
files_mb() {
  local f
  for f in "$FIN_STATE_DIR"/*.duckdb "$FIN_STATE_DIR"/*.duckdb.wal; do
    [ -e "$f" ] && printf '%s %d ' "$(basename "$f")" "$(( $(stat -c %s "$f") / 1048576 ))"
  done
}

# gen_ops FILE: "SECONDS OPS" of the last progress line of a generator's output in FILE.
gen_ops() { grep -a '  ops ' "$1" 2>/dev/null | tail -1 | awk '{ print $1 + 0, $3 + 0 }'; }
# minute_rates FILE: the generator's rate in each whole minute of its run (operations a second,
# space-separated, from minute 0), from its progress lines (one every 10 s): each minute's last
# line against the one before it.
minute_rates() {
  grep -a '  ops ' "$1" 2>/dev/null | awk '{ m = int(($1 + 0) / 60); s[m] = $1 + 0; o[m] = $3 + 0; if (m > n) n = m }
    END { ps = 0; po = 0; for (m = 0; m < n; m++) if (m in s) { printf "%.0f ", (o[m] - po) / (s[m] - ps); ps = s[m]; po = o[m] } else printf "? " }'
}
# pause_step NOW: in --backlog, stops fin up and starts the second writer at pause_at, and undoes
# both pause seconds later.
paused=0
pause_step() {
  if [ "$pause_at" -gt 0 ] && [ "$paused" = 0 ] && (( $1 >= pause_at )); then
    kill -STOP "$up_pid"
    bin/fin generate --rate "$rate" --seed 7 >"$work/gen.out" 2>&1 &
    gen_pid=$! paused=1
    log "minute $(($1 / 60)): fin up stopped for ${pause}s while a second writer goes on at $rate ops/s"
  elif [ "$paused" = 1 ] && (( $1 >= pause_at + pause )); then
    kill -INT "$gen_pid"
    wait "$gen_pid" || true
    gen_pid="" paused=2
    kill -CONT "$up_pid"
    read -r _ backlog_ops <<<"$(gen_ops "$work/gen.out")"
    log "fin up goes on with a backlog of about ${backlog_ops:-?} operations"
  fi
}

log "$(machine_line)"
log "fin up --rate $rate for $minutes minutes (reference point: minute $ref)"
LOG_LEVEL=${BENCH_MEMORY_LOG_LEVEL:-WARN} stack_up "$work/up.out" --rate "$rate"
start=$(date +%s)
next_minute=1 peak=0 ref_rss=0 end_rss=0 ref_anon=0 end_anon=0 rss=0 worker=0 worker_peak=0 mid_done=0
printf 'seconds\trss_kb\tdbt_worker_kb\tanon_kb\n' >"$out/rss.tsv"
while :; do
  now=$(( $(date +%s) - start ))
  kill -0 "$up_pid" 2>/dev/null || die "fin up exited: $(tail -20 "$work/up.out")"
  rss=$(rss_kb "$up_pid")
  worker=$(children_rss_kb "$up_pid")
  printf '%s\t%s\t%s\t%s\n' "$now" "$rss" "$worker" "$(rss_kb "$up_pid" RssAnon)" >>"$out/rss.tsv"
  (( rss > peak )) && peak=$rss
  (( worker > worker_peak )) && worker_peak=$worker
  pause_step "$now"
  # Once a minute, what grows: anonymous memory by holder, DuckDB's tags, and the publication's
  # file and WAL beside RAW's (the slope per minute, not only the two points).
  if (( now >= next_minute * 60 )); then
    log "minute $next_minute: RSS $((rss / 1024)) MB; anon $(anon_split "$up_pid"); files MB $(files_mb); DuckDB $(duck_mem)"
    next_minute=$((next_minute + 1))
  fi
  if [ "$ref_rss" = 0 ] && (( now >= ref * 60 )); then
    ref_rss=$(window_mean "$now") ref_anon=$(window_mean "$now" 4)
    heap_dump "heap-${ref}min"
    read -r ref_gen_s ref_gen_ops <<<"$(gen_ops "$work/up.out")"
    ref_split=$(anon_split "$up_pid")
    log "minute $ref: fin up RSS $((rss / 1024)) MB, dbt worker $((worker / 1024)) MB; anonymous MB by holder: $ref_split; DuckDB (tag,MB,spilled MB): $(duck_mem)"
  fi
  if [ "$mid_done" = 0 ] && (( mid > ref && mid < minutes && now >= mid * 60 )); then
    mid_done=1
    heap_dump "heap-${mid}min"
    log "minute $mid: fin up RSS $((rss / 1024)) MB; anonymous MB by holder: $(anon_split "$up_pid"); DuckDB (tag,MB,spilled MB): $(duck_mem)"
  fi
  (( now >= minutes * 60 )) && break
  sleep 10
done
end_rss=$(window_mean "$now") end_anon=$(window_mean "$now" 4)
end_split=$(anon_split "$up_pid")
heap_dump "heap-${minutes}min"
log "minute $minutes: DuckDB (tag,MB,spilled MB): $(duck_mem)"
# The stack kept up: postings reached the warehouse (a stalled stack would hold flat memory too).
raw=$(bin/fin sql "select count(*) from raw.transactions" 2>/dev/null | tail -1)
if ! [[ "$raw" =~ ^[0-9]+$ ]] || [ "$raw" = 0 ]; then
  die "no transactions in the warehouse after $minutes minutes: $(tail -5 "$work/up.out")"
fi

printf '\n%-58s %12s %12s %7s\n' "benchmark (fin up --rate $rate, fresh database)" "measured" "reference" "ratio"
printf '%-58s %9s MB %9s MB %7s\n' "RSS at minute $minutes vs at minute $ref, minute means (<= 1.10)" \
  "$((end_rss / 1024))" "$((ref_rss / 1024))" "$(awk -v a="$end_rss" -v b="$ref_rss" 'BEGIN { printf "%.2f", a / b }')"
printf '%-58s %9s MB %9s MB %7s\n' "  of it anonymous (RssAnon: not the binary's mapped pages)" \
  "$((end_anon / 1024))" "$((ref_anon / 1024))" "$(awk -v a="$end_anon" -v b="$ref_anon" 'BEGIN { printf "%.2f", b ? a / b : 0 }')"
printf '%-58s %s / %s\n' "  anonymous MB by holder, minute $ref / $minutes" "$ref_split" "$end_split"
printf '%-58s %9s MB\n' "  last sample" "$((rss / 1024))"
printf '%-58s %9s MB\n' "  peak RSS of fin up over the run" "$((peak / 1024))"
printf '%-58s %9s MB %9s MB\n' "  dbt worker RSS at the end / its peak" "$((worker / 1024))" "$((worker_peak / 1024))"
printf '%-58s %12s\n' "  rows in raw.transactions at the end" "$raw"
read -r gen_s gen_ops_n <<<"$(gen_ops "$work/up.out")"
reached=$(awk -v o="$gen_ops_n" -v s="$gen_s" -v ro="${ref_gen_ops:-0}" -v rs="${ref_gen_s:-0}" -v r="$ref" \
  'BEGIN { printf "%.0f (over the run) / %.0f (minute %d to the end)", (s ? o / s : 0), (s > rs ? (o - ro) / (s - rs) : 0), r }')
printf '%-58s %s ops/s\n' "  generator rate reached, target $rate" "$reached"
rates=$(minute_rates "$work/up.out")
printf '%-58s %s\n' "  generator rate minute by minute (ops/s, from minute 0)" "$rates"
# From minute 1 on (minute 0 holds the start): the mean, and the minutes below 95% of the rate.
read -r from1 low <<<"$(awk -v r="$rate" '{ for (i = 2; i <= NF; i++) { t += $i; n++; if ($i < 0.95 * r) { l = l sep (i - 1); sep = "," } } }
  END { printf "%.0f %s", n ? t / n : 0, l == "" ? "none" : l }' <<<"$rates")"
printf '%-58s %9s ops/s %7s\n' "  generator rate from minute 1, vs target $rate (>= 0.95)" "$from1" \
  "$(awk -v a="$from1" -v b="$rate" 'BEGIN { printf "%.2f", a / b }')"
printf '%-58s %s\n' "  minutes below 95% of the rate" "$low"
# How many writers were in operations on average: near all of them, their round trips bound the rate.
printf '%-58s %12s\n' "  generator writers busy (mean)" "$(grep -a '  ops ' "$work/up.out" | tail -1 | grep -o 'busy [0-9.]* of [0-9]* writers' || echo '?')"
# The collector's CPU and the process's since start, from the last heap profile's log line.
read -r gc_cpu cpu <<<"$(grep -a 'heap profile written' "$work/up.out" | tail -1 | sed -n 's/.*gc_cpu_s=\([0-9.]*\) cpu_s=\([0-9.]*\).*/\1 \2/p')"
printf '%-58s %9s s %9s s %7s\n' "  Go collector's CPU vs fin up's CPU, GOMEMLIMIT ${GOMEMLIMIT:-default}" "${gc_cpu:-?}" "${cpu:-?}" \
  "$(awk -v a="${gc_cpu:-0}" -v b="${cpu:-0}" 'BEGIN { printf "%.3f", b ? a / b : 0 }')"
printf '%-58s %12s\n' "  stack's DuckDB: FIN_WAREHOUSE_MEMORY_LIMIT, _THREADS" "${FIN_WAREHOUSE_MEMORY_LIMIT:-default}, ${FIN_WAREHOUSE_THREADS:-default}"
printf '%-58s %12s\n' "  DuckDB \"Out of Memory\" errors in fin up's log" "$(grep -acE 'Out of Memory|failed to (pin|allocate)|could not allocate' "$work/up.out" || true)"
[ -z "${backlog_ops:-}" ] || printf '%-58s %12s\n' "  operations written while fin up was stopped" "$backlog_ops"
machine_line
log "samples and heap profiles in ${out#"$FIN_ROOT"/}"
# A run whose generator fell short measured memory at another rate than the target's.
awk -v a="$from1" -v b="$rate" 'BEGIN { exit !(a >= 0.95 * b) }' ||
  die "the generator reached $from1 operations a second from minute 1, below 95% of the $rate asked: not the target's measurement"
