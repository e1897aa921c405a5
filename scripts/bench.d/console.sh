#!/usr/bin/env bash
# Console: a year of minute-by-minute dbt runs (525,600) in the run log, then the runs list's
# first page, a deep page (before key 1,000), a run's detail and the page's status call, each
# alternated with its reference in the same run (the same request on a run log of one page; the
# status also beside a plain read of its bytes from a file). ratio = seeded / reference.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
FIN_BENCH_DIR=$work go test -count=1 -run '^$' -bench '^BenchmarkConsoleRuns$' -benchtime 200x ./shared/stack/ |
  grep -E '^(seeded|Benchmark)'
