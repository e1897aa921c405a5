#!/usr/bin/env bash
# Contract test: real Debezium 3.6.1 (Kafka Connect standalone, debezium/fin-postgres.properties)
# on a real Kafka 4.4 broker, beside the Go capture, on the same OLTP changes; their events must
# match byte for byte but for wall-clock fields. Jars come from Maven Central (cached in ~/.m2 and
# ~/.cache/fin-orchestrator); about a minute once cached.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/postgres.sh
bash scripts/debezium.sh fetch
KAFKA_DIR=$(mktemp -d)
export KAFKA_DIR
trap 'bash scripts/kafka.sh stop; rm -rf "$KAFKA_DIR"' EXIT
bootstrap=$(KAFKA_PORT=0 bash scripts/kafka.sh start)
log "kafka at $bootstrap"
status=0
# The test's waits follow progress and do not count the time a connector's slot waits for a
# neighbour's transactions (up to 5 minutes): the timeout only stops a hung run.
FIN_CONTRACT_KAFKA=$bootstrap go test -count=1 -timeout 30m -run '^TestDebeziumContract$' -v ./shared/capture/ \
  >"$KAFKA_DIR/test.log" 2>&1 || status=$?
# The capture's and Connect's progress lines are noise here; the test's own lines are not.
grep -v -e '^\[debezium\]' -e ' INFO ' "$KAFKA_DIR/test.log" | tail -n 150 >&2 || true
[ "$status" = 0 ] || die "the Go capture and Debezium disagree (or one of them failed): see above"
log "contract holds: the Go capture's events match Debezium 3.6.1's"
