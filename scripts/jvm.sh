# shellcheck shell=bash
# Helpers of the scripts that run JVM parts (Kafka, Kafka Connect with Debezium).

# fetch_jars DIR COORD... copies the Maven Central artifacts COORD (group:artifact:version) and
# everything they depend on into DIR, through mvn (cached in ~/.m2). EXCLUDE_GROUPS (comma list of
# group ids) leaves those groups out. A stamp keeps a second call instant.
fetch_jars() {
  local dir=$1; shift
  local stamp
  stamp="$dir/.fetched-$(printf '%s ' "$@" "${EXCLUDE_GROUPS:-}" | sha256sum | cut -c1-12)"
  [ -e "$stamp" ] && return 0
  command -v mvn >/dev/null || apt_install maven
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  local work; work=$(mktemp -d)
  {
    echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
    echo '<groupId>local.fin</groupId><artifactId>jars</artifactId><version>1</version><dependencies>'
    local c g a v
    for c in "$@"; do
      IFS=: read -r g a v <<<"$c"
      echo "<dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version></dependency>"
    done
    echo '</dependencies></project>'
  } >"$work/pom.xml"
  rm -rf "$dir"; mkdir -p "$dir"
  log "fetching $* from Maven Central (cached in ~/.m2)"
  mvn -B -q -Dstyle.color=never -f "$work/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DoutputDirectory="$dir" -DincludeScope=runtime ${EXCLUDE_GROUPS:+-DexcludeGroupIds="$EXCLUDE_GROUPS"} >&2 \
    || { rm -rf "$work"; die "mvn could not fetch $*"; }
  rm -rf "$work"
  touch "$stamp"
}

# (free_port comes from lib.sh.)

# wait_port HOST PORT SECONDS PIDFILE waits until something accepts connections on HOST:PORT,
# failing early when the process in PIDFILE dies.
wait_port() {
  local host=$1 port=$2 secs=$3 pidfile=$4 i
  for ((i = 0; i < secs * 5; i++)); do
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

# stop_pidfile PIDFILE stops the process PIDFILE names (TERM, then KILL after 30 s) and removes
# the file.
stop_pidfile() {
  local pidfile=$1 pid
  if [ -s "$pidfile" ] && pid=$(cat "$pidfile") && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
