#!/usr/bin/env bash
# dbt incremental vs full refresh: ~1,000,000 transactions of RAW change events, then 1% new
# changes; prints the incremental dbt build beside dbt build --full-refresh of the same data and
# the ratio (target <= 15%). About 3-5 minutes on 2 cores. FIN_BENCH_DBT_TRANSACTIONS scales it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/venv.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/fin-dbt-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
.venv/bin/python scripts/dbt/bench.py "$work" "${FIN_BENCH_DBT_TRANSACTIONS:-1000000}"
