#!/usr/bin/env bash
# The dbt project against real warehouses: dbt-duckdb (SCD2 history over two runs, incremental ==
# full refresh, money tests on broken data, docs), the property test (generated change logs split
# into loads in random order, torn transactions never in gold, incremental == full refresh;
# FIN_DBT_PROPERTY_SEEDS="1 2 3 ..." runs
# more seeds than the default two) and dbt-snowflake (MERGE included) against a fakesnow server.
# Small fixtures: about 5 minutes on a busy machine. (The dbt-runner's tests with real dbt are Go tests in
# shared/dbtrun, run by go test ./... once scripts/venv.sh has made the venv.)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/venv.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/fin-dbt-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "dbt on DuckDB"
.venv/bin/python scripts/dbt/check.py duckdb "$work/duckdb"
log "dbt on DuckDB: incremental == full refresh on generated change logs (seeds: ${FIN_DBT_PROPERTY_SEEDS:-1 2})"
.venv/bin/python scripts/dbt/property.py "$work/property"
log "dbt on Snowflake (fakesnow)"
.venv/bin/python scripts/dbt/check.py snowflake "$work/snowflake"
