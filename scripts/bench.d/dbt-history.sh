#!/usr/bin/env bash
# dbt incremental cost against history (issue 16): the same fixed load of 10,000 new transactions
# built incrementally on 1,000,000 and on 10,000,000 transactions of history, in the same run,
# rounds alternating (target: at most 1.3x); also the 10M first build (a full refresh) with its
# time and the dbt worker's peak RSS. dbt runs in one warm worker per history, as shared/dbtrun
# runs it, with the project's DUCKDB_MEMORY_LIMIT unless the environment sets one (the first
# build: FIN_BENCH_DBT_FIRST_MEMORY_LIMIT, default 8GB: at 4GB the 10M full refresh ran out of memory once). Each history's first build is kept in
# FIN_BENCH_DBT_CACHE (default ~/.cache/fin/dbt-history; sizes in docs/benchmarks.md), keyed by
# the generator's parameters and code and the dbt project's files, so a second run skips the
# generation and the first builds and only runs the rounds; the generated RAW is kept apart
# (keyed by the generator alone), so a change of the models re-runs only the first builds. Measured times: docs/benchmarks.md.
# FIN_BENCH_DBT_HISTORY="SMALL LARGE", FIN_BENCH_DBT_CHANGES and FIN_BENCH_DBT_ROUNDS change the
# sizes (scripts/dbt/bench_history.py).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/venv.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/fin-dbt-history.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2086 # two sizes, split on purpose
.venv/bin/python scripts/dbt/bench_history.py "$work" ${FIN_BENCH_DBT_HISTORY:-1000000 10000000}
