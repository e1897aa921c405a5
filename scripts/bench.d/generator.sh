#!/usr/bin/env bash
# Bulk generation of the ledger (fin generate --once: generate rows and COPY them) beside psql
# \copy of the very same rows into the same table with the same indexes, constraints and
# triggers, measured in the same run. Target: at least 0.7 of the \copy rate.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"
go build -o bin/fin ./cmd/fin

rows=${BENCH_TRANSACTIONS:-1000000}
db=fin_bench_generator_$$ # engineers share the cluster: a database of this run's own
export PGPASSFILE=${PGPASSFILE:-$FIN_PGPASSFILE}
admin="postgres://fin@127.0.0.1:$FIN_PG_PORT/fin?sslmode=disable"
url="postgres://fin@127.0.0.1:$FIN_PG_PORT/$db?sslmode=disable"
psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
trap 'psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

cfg=$(mktemp)
cat >"$cfg" <<YAML
customers: 10000
accounts: 20000
transactions: $rows
YAML
out=$(DATABASE_URL=$url bin/fin generate --once --config "$cfg" --seed 1)
gen_rate=$(sed -n 's/.*(ledger \([0-9]*\) rows\/s).*/\1/p' <<<"$out")
[ -n "$gen_rate" ] || die "fin generate printed no ledger rate: $out"

csv=$(mktemp --suffix=.csv)
trap 'rm -f "$csv" "$cfg"; psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
psql -X -q "$url" -c "\\copy transactions TO '$csv' CSV"
psql -X -q "$url" -c "TRUNCATE transactions"
t0=$(date +%s.%N)
psql -X -q "$url" -c "\\copy transactions FROM '$csv' CSV"
t1=$(date +%s.%N)
copy_rate=$(python3 -c "print(round($rows / ($t1 - $t0)))")
ratio=$(python3 -c "print(f'{$gen_rate / $copy_rate:.2f}')")
printf 'generator bulk load: %d transactions  fin generate --once %s rows/s  |  psql \\copy %s rows/s  |  ratio %s (target >= 0.70)\n' \
  "$rows" "$gen_rate" "$copy_rate" "$ratio"
