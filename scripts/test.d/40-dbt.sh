#!/usr/bin/env bash
# The dbt project against real warehouses: dbt-duckdb (SCD2 history over two runs, incremental ==
# full refresh, money tests on broken data, docs), dbt-snowflake against a fakesnow server, and
# the dbt-runner turning a failing dbt test into a failed invocation. Small fixtures: ~2 minutes.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/venv.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/fin-dbt-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "dbt on DuckDB"
.venv/bin/python scripts/dbt/check.py duckdb "$work/duckdb"
log "dbt on Snowflake (fakesnow)"
.venv/bin/python scripts/dbt/check.py snowflake "$work/snowflake"
log "dbt-runner with real dbt"
FIN_REQUIRE_DBT=1 go test -count=1 -run 'WithDBT' ./shared/dbtrun/
