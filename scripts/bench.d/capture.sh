#!/usr/bin/env bash
# Capture benchmarks, each beside its reference from the same run on the same machine:
#  - 1,000,000 row changes in 1,000 transactions: the Go capture vs pg_recvlogical with pgoutput
#    (Postgres's own decoding limit; target >= 0.8) and vs Debezium 3.6.1 on Kafka Connect with
#    a real Kafka 4.4 broker (target >= 3x);
#  - one 1,000,000-row transaction: the Go capture's peak RSS (budget 200 MB).
# FIN_BENCH_ROWS scales the workload down for a quick look; FIN_BENCH_DEBEZIUM=0 skips Debezium;
# further arguments go to finbench capture (e.g. --rounds 1).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/postgres.sh
go build -o bin/ ./cmd/fin ./cmd/finbench # finbench capture measures bin/fin capture
args=(--rows "${FIN_BENCH_ROWS:-1000000}" --txns 1000)
if [ "${FIN_BENCH_DEBEZIUM:-1}" != 0 ]; then
  bash scripts/debezium.sh fetch
  KAFKA_DIR=$(mktemp -d)
  export KAFKA_DIR
  trap 'bash scripts/kafka.sh stop; rm -rf "$KAFKA_DIR"' EXIT
  args+=(--debezium-kafka "$(KAFKA_PORT=0 bash scripts/kafka.sh start)")
fi
LOG_LEVEL=WARN bin/finbench capture "${args[@]}" "$@"
