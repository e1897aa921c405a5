#!/usr/bin/env bash
# Landing throughput on one core (GOMAXPROCS=1): records per second for base64 + Debezium
# envelope decode + Parquet (zstd) encode of a batch, the landing function's whole CPU work
# (S3 is a discard writer). Printed beside two references measured in the same run on the
# same records: encoding/json decoding them into generic maps alone, and parquet-go writing
# the already-decoded rows alone. Target: >= 100,000 records/s.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

out=$(GOMAXPROCS=1 go test -run '^$' -bench 'Landing|Reference' -benchtime "${FIN_BENCH_TIME:-3s}" \
  -count 1 ./shared/landing/) || { printf '%s\n' "$out" >&2; die "landing benchmark failed"; }

rate() { # rate NAME -> records/s of that benchmark line
  awk -v n="$1" '$1 ~ "^Benchmark"n"(-[0-9]+)?$" { for (i = 2; i <= NF; i++) if ($(i+1) == "records/s") print $i }' <<<"$out"
}
land100=$(rate 'Landing/batch=100')
land1000=$(rate 'Landing/batch=1000')
json=$(rate 'ReferenceJSONDecode')
pq=$(rate 'ReferenceParquetWrite')
if [ -z "$land100" ] || [ -z "$land1000" ] || [ -z "$json" ] || [ -z "$pq" ]; then
  printf '%s\n' "$out" >&2
  die "could not read the benchmark figures"
fi

awk -v l100="$land100" -v l1000="$land1000" -v json="$json" -v pq="$pq" 'BEGIN {
  printf "landing (1 core)         decode+parquet, batch 1000: %9.0f records/s | target 100000: %s\n", l1000, (l1000 >= 100000 ? "met" : "NOT met")
  printf "                         decode+parquet, batch  100: %9.0f records/s\n", l100
  printf "  reference  encoding/json decode alone (generic)  : %9.0f records/s | ratio landing/reference %.2f\n", json, l1000 / json
  printf "  reference  parquet-go write alone (rows decoded) : %9.0f records/s | ratio landing/reference %.2f\n", pq, l1000 / pq
}'
