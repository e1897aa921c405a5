#!/usr/bin/env bash
# Warehouse loader: rows/s into DuckDB beside DuckDB's own INSERT INTO ... SELECT * FROM
# read_parquet([...]) of the same bronze files, and the time to skip a duplicate event beside the
# time to load one object. Both measured in this run, printed with their ratios. Arguments go to
# finbench loader (bin/finbench loader -h: --objects, --rows, --rounds, --duplicates).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"
go build -o bin/finbench ./cmd/finbench
bin/finbench loader "$@"
