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
for b in scripts/bench.d/*.sh; do
  [ -e "$b" ] || continue
  log "benchmark $b"
  bash "$b"
done
