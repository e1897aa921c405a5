#!/usr/bin/env bash
# Warehouse loader: rows/s into DuckDB beside DuckDB's own INSERT INTO ... SELECT * FROM
# read_parquet([...]) of the same bronze files, and the time to skip a duplicate event beside the
# time to load one object. Both measured in this run, printed with their ratios.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"
[ -x bin/fin ] || go build -o bin/fin ./cmd/fin
bin/fin bench-loader "$@"
