#!/usr/bin/env bash
# Installs (when absent) and starts the project's own Postgres 15 cluster with wal_level=logical.
# Idempotent: re-running it on a running cluster only checks it. Prints the DATABASE_URL to use.
#
# The cluster listens on 127.0.0.1:$FIN_PG_PORT (default 5433), so a Postgres already serving 5432
# is left alone. Its role `fin` has a random password kept in $FIN_PGPASSFILE (pgpass format, root
# only). Set DATABASE_URL to use any other Postgres instead; it must have wal_level=logical.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

if [ -n "${DATABASE_URL:-}" ]; then
  command -v psql >/dev/null || apt_install postgresql-client-15
  level=$(psql "$DATABASE_URL" -Atc 'show wal_level' 2>&1) \
    || die "cannot connect to DATABASE_URL: $level"
  [ "$level" = logical ] || die "DATABASE_URL points at a server with wal_level=$level; change data capture needs wal_level=logical (ALTER SYSTEM SET wal_level = logical; then restart it)"
  log "using DATABASE_URL (wal_level=logical)"
  exit 0
fi

if [ ! -x "$FIN_PG_BIN/pg_ctl" ]; then
  log "Postgres $FIN_PG_VERSION not found in $FIN_PG_BIN: installing it from Debian"
  apt_install "postgresql-$FIN_PG_VERSION" "postgresql-client-$FIN_PG_VERSION"
  [ -x "$FIN_PG_BIN/pg_ctl" ] || die "postgresql-$FIN_PG_VERSION installed, but $FIN_PG_BIN/pg_ctl is missing"
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  die "no postgres user on this machine (it comes with Debian's postgresql-common package)"
fi

owner=$(id -un)
[ "$(id -u)" = 0 ] && owner=postgres
mkdir -p "$FIN_PG_HOME"
chmod 755 "$FIN_PG_HOME"

# Our cluster not running, yet something answers on its port: stop before touching anything.
if ! { [ -s "$FIN_PGDATA/PG_VERSION" ] && as_postgres "$FIN_PG_BIN/pg_ctl" -D "$FIN_PGDATA" status >/dev/null 2>&1; } \
  && (exec 3<>"/dev/tcp/127.0.0.1/$FIN_PG_PORT") 2>/dev/null; then
  die "port $FIN_PG_PORT is taken by another program; set FIN_PG_PORT to a free port, or DATABASE_URL to a Postgres with wal_level=logical"
fi

if [ ! -s "$FIN_PGDATA/PG_VERSION" ]; then
  log "creating cluster in $FIN_PGDATA"
  mkdir -p "$FIN_PGDATA"
  chown "$owner" "$FIN_PGDATA"
  chmod 700 "$FIN_PGDATA"
  as_postgres "$FIN_PG_BIN/initdb" -D "$FIN_PGDATA" -U postgres --auth-local=peer \
    --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null \
    || die "initdb failed for $FIN_PGDATA"
fi

# Settings the pipeline relies on; rewritten each time so an edit here reaches old clusters.
conf="$FIN_PGDATA/fin.conf"
as_postgres tee "$conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $FIN_PG_PORT
unix_socket_directories = '$FIN_PGDATA'
wal_level = logical
max_wal_senders = 20
max_replication_slots = 20
max_slot_wal_keep_size = '4GB'
max_connections = 200
shared_buffers = '256MB'
timezone = 'UTC'
log_timezone = 'UTC'
CONF
grep -q "^include_if_exists = 'fin.conf'" "$FIN_PGDATA/postgresql.conf" \
  || echo "include_if_exists = 'fin.conf'" | as_postgres tee -a "$FIN_PGDATA/postgresql.conf" >/dev/null

# The role fin may connect over the Unix socket (in $FIN_PGDATA) with its password, as it does
# over TCP: a client on this machine then skips the kernel's TCP path (api.sh's fin api does).
# The line goes first: initdb's `local all all peer` below it would refuse fin to any OS user
# but one named fin. The socket sits in the cluster's own folder (mode 700): only its owner and
# root reach it, and they still need the password.
hba="$FIN_PGDATA/pg_hba.conf"
hba_line="local all fin scram-sha-256"
hba_changed=0
if ! as_postgres grep -qxF "$hba_line" "$hba"; then
  { echo "$hba_line"; as_postgres cat "$hba"; } | as_postgres tee "$hba.new" >/dev/null
  as_postgres chmod 600 "$hba.new"
  as_postgres mv "$hba.new" "$hba"
  hba_changed=1
fi

started=0
if as_postgres "$FIN_PG_BIN/pg_ctl" -D "$FIN_PGDATA" status >/dev/null 2>&1; then
  log "cluster already running on 127.0.0.1:$FIN_PG_PORT"
else
  log "starting cluster on 127.0.0.1:$FIN_PG_PORT (log: $FIN_PGDATA/server.log)"
  as_postgres "$FIN_PG_BIN/pg_ctl" -D "$FIN_PGDATA" -l "$FIN_PGDATA/server.log" -w -t 60 start >/dev/null \
    || die "Postgres did not start; see $FIN_PGDATA/server.log: $(tail -n 5 "$FIN_PGDATA/server.log" 2>/dev/null)"
  started=1
fi
if [ "$hba_changed" = 1 ] && [ "$started" = 0 ]; then
  log "pg_hba.conf: fin may connect over the Unix socket too; reloading"
  as_postgres "$FIN_PG_BIN/pg_ctl" -D "$FIN_PGDATA" reload >/dev/null || die "reload failed"
fi

psql_admin() { as_postgres "$FIN_PG_BIN/psql" -h "$FIN_PGDATA" -p "$FIN_PG_PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }

level=$(psql_admin -Atc 'show wal_level')
if [ "$level" != logical ]; then
  [ "$started" = 1 ] && die "wal_level is $level after start"
  log "wal_level is $level: restarting to apply wal_level=logical"
  as_postgres "$FIN_PG_BIN/pg_ctl" -D "$FIN_PGDATA" -w -t 60 restart >/dev/null || die "restart failed"
fi

# Role and database. The password is made once and kept in a pgpass file only root can read.
if [ ! -s "$FIN_PGPASSFILE" ]; then
  umask 077
  pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
  printf '*:%s:*:fin:%s\n' "$FIN_PG_PORT" "$pw" >"$FIN_PGPASSFILE"
  chmod 600 "$FIN_PGPASSFILE"
fi
pw=$(cut -d: -f5 "$FIN_PGPASSFILE")
# The role may create databases (tests make throwaway ones) and replicate (the capture).
psql_admin -v pw="$pw" <<'SQL'
SELECT format('CREATE ROLE fin LOGIN CREATEDB REPLICATION PASSWORD %L', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fin') \gexec
SELECT format('ALTER ROLE fin LOGIN CREATEDB REPLICATION PASSWORD %L', :'pw') \gexec
SELECT 'CREATE DATABASE fin OWNER fin' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'fin') \gexec
SQL

log "ready: DATABASE_URL=postgres://fin@127.0.0.1:$FIN_PG_PORT/fin (password in $FIN_PGPASSFILE)"
