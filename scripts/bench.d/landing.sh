#!/usr/bin/env bash
# Landing throughput on one core (GOMAXPROCS=1): records per second for base64 + Debezium
# envelope decode + Parquet (zstd) encode of a batch, the landing function's whole CPU work
# (S3 is a discard writer). Printed beside two references measured in the same run on the
# same records: encoding/json decoding them into generic maps alone, and parquet-go writing
# the already-decoded rows alone. Target: >= 100,000 records/s.
#
# Each figure is given per second of CPU time the benchmark process used (what one core does,
# the target's measure) and per wall-clock second (lower whenever other processes share the
# core; on an idle machine the two agree).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

out=$(GOMAXPROCS=1 go test -run '^$' -bench 'Landing|Reference' -benchtime "${FIN_BENCH_TIME:-3s}" \
  -count 1 ./shared/landing/) || { printf '%s\n' "$out" >&2; die "landing benchmark failed"; }

metric() { # metric BENCHMARK UNIT -> the value of that unit on that benchmark's line
  awk -v n="$1" -v u="$2" '$1 ~ "^Benchmark"n"(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == u) print $i }' <<<"$out"
}
declare -A cpu wall
for b in 'Landing/batch=1000' 'Landing/batch=100' ReferenceJSONDecode ReferenceParquetWrite; do
  cpu[$b]=$(metric "$b" records/cpu-s)
  wall[$b]=$(metric "$b" records/s)
  if [ -z "${cpu[$b]}" ] || [ -z "${wall[$b]}" ]; then
    printf '%s\n' "$out" >&2
    die "no figure for $b in the benchmark output"
  fi
done

awk -v l1000="${cpu[Landing/batch=1000]}" -v l100="${cpu[Landing/batch=100]}" \
    -v json="${cpu[ReferenceJSONDecode]}" -v pq="${cpu[ReferenceParquetWrite]}" \
    -v w1000="${wall[Landing/batch=1000]}" -v w100="${wall[Landing/batch=100]}" \
    -v wjson="${wall[ReferenceJSONDecode]}" -v wpq="${wall[ReferenceParquetWrite]}" 'BEGIN {
  printf "landing, 1 core (GOMAXPROCS=1)               records/cpu-s  (records/wall-s)\n"
  printf "  decode+parquet, batch 1000               %12.0f  (%9.0f)  target 100000: %s\n", l1000, w1000, (l1000 >= 100000 ? "met" : "NOT met")
  printf "  decode+parquet, batch  100               %12.0f  (%9.0f)\n", l100, w100
  printf "  reference: encoding/json decode alone    %12.0f  (%9.0f)  ratio landing/reference %.2f\n", json, wjson, l1000 / json
  printf "  reference: parquet-go write alone        %12.0f  (%9.0f)  ratio landing/reference %.2f\n", pq, wpq, l1000 / pq
}'
