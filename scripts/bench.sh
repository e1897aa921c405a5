#!/usr/bin/env bash
# make bench: every benchmark of the project, each printed beside its reference measured in the
# same run (a ratio, since the machines are shared and noisy). Each scripts/bench.d/*.sh is one.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$FIN_ROOT"

log "$(machine_line)"
bash scripts/postgres.sh
mkdir -p "$FIN_STATE_DIR"
# fin is what users run; finbench holds the benchmarks that need more than go test -bench.
go build -o bin/ ./cmd/fin ./cmd/finbench
# A benchmark that fails is named at the end and fails the run, but does not stop the others: one
# run gives every figure it can (docs/benchmarks.md). Names given (e.g. `bash scripts/bench.sh api
# dbt-history`) run only those.
if [ $# -gt 0 ]; then
  set -- "${@/#/scripts/bench.d/}"
  set -- "${@/%/.sh}"
else
  set -- scripts/bench.d/*.sh
fi
failed=()
for b in "$@"; do
  [ -e "$b" ] || { failed+=("$b (no such benchmark)"); continue; }
  log "benchmark $b"
  started=$SECONDS
  if bash "$b"; then
    log "benchmark $b: done in $((SECONDS - started)) s"
  else
    rc=$?
    log "benchmark $b: FAILED (exit $rc) after $((SECONDS - started)) s"
    failed+=("$b")
  fi
done
log "$(machine_line) (at the end)"
if [ ${#failed[@]} -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
