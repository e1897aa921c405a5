#!/usr/bin/env bash
# A build's publication for history reads (histread2): `finbench publish` takes the history marts
# of the 1M and, when cached, the 10M history's models file that dbt-history.sh keeps in
# FIN_BENCH_DBT_CACHE (default ~/.cache/fin/dbt-history; FIN_BENCH_PUBLISH_MODELS names one file
# instead), then times the publication of builds written as dbt's history_range writes, beside
# the same marts published whole. Skipped, saying so, when no such file is cached (make bench runs
# dbt-history.sh first). Arguments go to finbench publish (--rounds, --changes).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

cache=${FIN_BENCH_DBT_CACHE:-$HOME/.cache/fin/dbt-history}
models=${FIN_BENCH_PUBLISH_MODELS:-$(find "$cache" -maxdepth 1 \( -name '1000000-*.duckdb' -o -name '10000000-*.duckdb' \) 2>/dev/null | sort)}
if [ -z "$models" ]; then
  log "publish: no 1M or 10M history models file cached (run scripts/bench.d/dbt-history.sh first); skipped"
  exit 0
fi
go build -o bin/ ./cmd/finbench
for m in $models; do
  bin/finbench publish --models "$m" "$@"
done
