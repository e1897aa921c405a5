#!/usr/bin/env bash
# dbt incremental vs full refresh: ~1,000,000 transactions of RAW change events, then 1% new
# changes; prints the incremental dbt build beside dbt build --full-refresh of the same data and
# the ratio (target <= 15%), in wall time, dbt's own elapsed time and CPU time, each with where it
# went. dbt runs as shared/dbtrun runs it: one warm worker process for every build
# (FIN_BENCH_DBT_COLD=1: a fresh dbt process per build, the runner's fallback). About 2 minutes on
# an idle 2-core machine, 5-7 under load. FIN_BENCH_DBT_TRANSACTIONS scales it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/venv.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/fin-dbt-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
.venv/bin/python scripts/dbt/bench.py "$work" "${FIN_BENCH_DBT_TRANSACTIONS:-1000000}"
