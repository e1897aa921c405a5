#!/usr/bin/env bash
# Apache Kafka 4.x as one KRaft node (broker + controller) from Maven Central jars, no Docker.
#
#   scripts/kafka.sh fetch   fetch the jars (cached under ~/.m2 and $FIN_CACHE)
#   scripts/kafka.sh start   start the broker unless it runs; prints its bootstrap address
#   scripts/kafka.sh stop    stop it
#
# KAFKA_DIR (default $FIN_STATE_DIR/kafka) holds its data, log and pid; KAFKA_PORT (default 9092,
# 0 for any free port) is its client port. `make run` does not need this: the Go stack embeds a
# broker (franz-go kfake). Point it here with KAFKA_BROKERS=127.0.0.1:9092.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/jvm.sh
. "$(dirname "$0")/jvm.sh"

KAFKA_VERSION=4.4.0
LOG4J_VERSION=2.24.3
FIN_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/fin-orchestrator
KAFKA_LIB=$FIN_CACHE/kafka-$KAFKA_VERSION/lib
KAFKA_DIR=${KAFKA_DIR:-$FIN_STATE_DIR/kafka}
KAFKA_PORT=${KAFKA_PORT:-9092}

fetch() {
  fetch_jars "$KAFKA_LIB" "org.apache.kafka:kafka_2.13:$KAFKA_VERSION" \
    "org.apache.logging.log4j:log4j-slf4j-impl:$LOG4J_VERSION" "org.apache.logging.log4j:log4j-core:$LOG4J_VERSION"
}

running() { [ -s "$KAFKA_DIR/pid" ] && kill -0 "$(cat "$KAFKA_DIR/pid")" 2>/dev/null; }

start() {
  fetch
  mkdir -p "$KAFKA_DIR"
  if running; then
    cat "$KAFKA_DIR/bootstrap"
    return 0
  fi
  [ "$KAFKA_PORT" = 0 ] && KAFKA_PORT=$(free_port)
  local controller; controller=$(free_port)
  cat >"$KAFKA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$controller
log.dirs=$KAFKA_DIR/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  cat >"$KAFKA_DIR/log4j2.properties" <<'PROPS'
rootLogger.level=WARN
rootLogger.appenderRef.out.ref=out
appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
PROPS
  local java=(java -Xms128m -Xmx512m "-Dlog4j2.configurationFile=$KAFKA_DIR/log4j2.properties" -cp "$KAFKA_LIB/*")
  # A fresh data folder each start: this broker is for tests and local runs, not a store to keep.
  rm -rf "$KAFKA_DIR/data"
  "${java[@]}" kafka.tools.StorageTool format --standalone -t "$("${java[@]}" kafka.tools.StorageTool random-uuid)" \
    -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/format.log" 2>&1 || die "kafka storage format failed: $(cat "$KAFKA_DIR/format.log")"
  nohup "${java[@]}" kafka.Kafka "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/kafka.log" 2>&1 &
  echo $! >"$KAFKA_DIR/pid"
  wait_port 127.0.0.1 "$KAFKA_PORT" 120 "$KAFKA_DIR/pid" || { tail -30 "$KAFKA_DIR/kafka.log" >&2; stop; die "kafka did not start; log in $KAFKA_DIR/kafka.log"; }
  echo "127.0.0.1:$KAFKA_PORT" >"$KAFKA_DIR/bootstrap"
  log "kafka $KAFKA_VERSION listening on 127.0.0.1:$KAFKA_PORT (log $KAFKA_DIR/kafka.log)"
  cat "$KAFKA_DIR/bootstrap"
}

stop() {
  stop_pidfile "$KAFKA_DIR/pid"
  rm -f "$KAFKA_DIR/bootstrap"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 fetch|start|stop" ;;
esac
