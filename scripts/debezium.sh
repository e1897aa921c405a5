#!/usr/bin/env bash
# Debezium 3.6.1 (PostgreSQL connector) on Kafka Connect standalone, from Maven Central jars, on
# Java 17, no Docker. It runs debezium/fin-postgres.properties, the repo's connector configuration.
#
#   scripts/debezium.sh fetch   fetch Connect and the connector (cached under ~/.m2 and $FIN_CACHE)
#   scripts/debezium.sh start   start Connect with the connector unless it runs
#   scripts/debezium.sh stop    stop it (offsets are flushed on the way out)
#
# Environment: KAFKA_BROKERS (required by start; scripts/kafka.sh start prints one),
# DEBEZIUM_DIR (default $FIN_STATE_DIR/debezium: offsets, log, pid), FIN_DBZ_PG_DATABASE (default
# fin), FIN_DBZ_SLOT (default fin_debezium). Postgres is the project's cluster (scripts/postgres.sh),
# or DATABASE_URL.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/jvm.sh
. "$(dirname "$0")/jvm.sh"

CONNECT_VERSION=4.3.1
DEBEZIUM_VERSION=3.6.1.Final
LOG4J_VERSION=2.24.3
FIN_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/fin-orchestrator
CONNECT_LIB=$FIN_CACHE/connect-$CONNECT_VERSION/lib
PLUGIN_PATH=$FIN_CACHE/debezium-$DEBEZIUM_VERSION/plugins
DEBEZIUM_DIR=${DEBEZIUM_DIR:-$FIN_STATE_DIR/debezium}

fetch() {
  fetch_jars "$CONNECT_LIB" "org.apache.kafka:connect-runtime:$CONNECT_VERSION" "org.apache.kafka:connect-json:$CONNECT_VERSION" \
    "org.apache.logging.log4j:log4j-slf4j-impl:$LOG4J_VERSION" "org.apache.logging.log4j:log4j-core:$LOG4J_VERSION"
  # The connector's own jars, without Kafka's (Connect provides those).
  EXCLUDE_GROUPS=org.apache.kafka fetch_jars "$PLUGIN_PATH/debezium-connector-postgres" \
    "io.debezium:debezium-connector-postgres:$DEBEZIUM_VERSION"
}

running() { [ -s "$DEBEZIUM_DIR/pid" ] && kill -0 "$(cat "$DEBEZIUM_DIR/pid")" 2>/dev/null; }

# pg_settings exports the FIN_DBZ_PG_* variables the connector configuration reads.
pg_settings() {
  if [ -n "${DATABASE_URL:-}" ]; then
    eval "$(python3 - "$DATABASE_URL" <<'PY'
import sys, shlex, urllib.parse as u
p = u.urlparse(sys.argv[1])
for k, v in (("HOST", p.hostname or "127.0.0.1"), ("PORT", p.port or 5432), ("USER", p.username or ""),
             ("PASSWORD", u.unquote(p.password or "")), ("DATABASE", p.path.lstrip("/") or "fin")):
    print("export FIN_DBZ_PG_%s=%s" % (k, shlex.quote(str(v))))
PY
)"
    [ -n "$FIN_DBZ_PG_PASSWORD" ] || FIN_DBZ_PG_PASSWORD=${PGPASSWORD:-}
  else
    export FIN_DBZ_PG_HOST=127.0.0.1 FIN_DBZ_PG_PORT=$FIN_PG_PORT FIN_DBZ_PG_USER=fin
    [ -r "$FIN_PGPASSFILE" ] || die "cannot read $FIN_PGPASSFILE (run scripts/postgres.sh)"
    FIN_DBZ_PG_PASSWORD=$(cut -d: -f5 "$FIN_PGPASSFILE")
  fi
  export FIN_DBZ_PG_PASSWORD
  export FIN_DBZ_PG_DATABASE=${FIN_DBZ_PG_DATABASE:-fin}
  export FIN_DBZ_SLOT=${FIN_DBZ_SLOT:-fin_debezium}
}

start() {
  [ -n "${KAFKA_BROKERS:-}" ] || die "set KAFKA_BROKERS (scripts/kafka.sh start prints it)"
  fetch
  mkdir -p "$DEBEZIUM_DIR"
  if running; then log "already running (pid $(cat "$DEBEZIUM_DIR/pid"))"; return 0; fi
  pg_settings
  local port; port=$(free_port)
  cat >"$DEBEZIUM_DIR/worker.properties" <<PROPS
bootstrap.servers=$KAFKA_BROKERS
key.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false
offset.storage.file.filename=$DEBEZIUM_DIR/offsets.dat
offset.flush.interval.ms=1000
plugin.path=$PLUGIN_PATH
listeners=http://127.0.0.1:$port
config.providers=env
# Only plugins that declare themselves (all of Debezium's do): a faster start than scanning jars.
plugin.discovery=service_load
config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
PROPS
  cat >"$DEBEZIUM_DIR/log4j2.properties" <<'PROPS'
rootLogger.level=WARN
rootLogger.appenderRef.out.ref=out
appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
logger.dbz.name=io.debezium
logger.dbz.level=INFO
# Debezium's CloudEventsConverter does not load against Connect 4.3's JsonConverter; it is not
# used here, and the scanner's stack trace about it is noise.
logger.scan.name=org.apache.kafka.connect.runtime.isolation
logger.scan.level=FATAL
PROPS
  nohup java -Xms128m -Xmx768m "-Dlog4j2.configurationFile=$DEBEZIUM_DIR/log4j2.properties" -cp "$CONNECT_LIB/*" \
    org.apache.kafka.connect.cli.ConnectStandalone "$DEBEZIUM_DIR/worker.properties" \
    "${DEBEZIUM_CONNECTOR:-$FIN_ROOT/debezium/fin-postgres.properties}" >"$DEBEZIUM_DIR/connect.log" 2>&1 &
  echo $! >"$DEBEZIUM_DIR/pid"
  echo "$port" >"$DEBEZIUM_DIR/rest-port"
  wait_port 127.0.0.1 "$port" 180 "$DEBEZIUM_DIR/pid" || { tail -30 "$DEBEZIUM_DIR/connect.log" >&2; stop; die "Kafka Connect did not start; log in $DEBEZIUM_DIR/connect.log"; }
  log "Kafka Connect $CONNECT_VERSION with Debezium $DEBEZIUM_VERSION running (REST 127.0.0.1:$port, log $DEBEZIUM_DIR/connect.log)"
}

stop() {
  stop_pidfile "$DEBEZIUM_DIR/pid"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 fetch|start|stop" ;;
esac
