#!/usr/bin/env bash
# The service scripts are idempotent: each runs twice in a row without error, and a taken port is
# refused with a message that names it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"
mkdir -p "$FIN_STATE_DIR"

for s in postgres venv; do
  for i in 1 2; do
    log "scripts/$s.sh, run $i"
    bash "scripts/$s.sh" >/dev/null 2>"$FIN_STATE_DIR/script-test.log" || die "scripts/$s.sh failed on run $i: $(cat "$FIN_STATE_DIR/script-test.log")"
  done
done

# Another program on the port: the script must stop and say which port and what to set.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $port)); s.listen(); time.sleep(120)" &
holder=$!
datadir=$(mktemp -d /var/tmp/fin-pg-port-test.XXXXXX)
chmod 755 "$datadir"
trap 'kill $holder 2>/dev/null; rm -rf "$datadir"' EXIT
sleep 0.5
if out=$(FIN_PG_PORT=$port FIN_PGDATA=$datadir/data FIN_PGPASSFILE=$datadir/pgpass bash scripts/postgres.sh 2>&1); then
  die "scripts/postgres.sh started on port $port although another program holds it"
fi
grep -q "port $port is taken" <<<"$out" || die "scripts/postgres.sh failed without naming the taken port: $out"
# wait_for (lib.sh) gives up after its stall when its progress does not change, after its limit
# when it does, and returns once its check passes; a failure names the cluster's transactions.
export PGPASSFILE=${PGPASSFILE:-$FIN_PGPASSFILE}
admin="postgres://fin@127.0.0.1:$FIN_PG_PORT/fin?sslmode=disable" db=fin_no_such_database
never() { return 1; }
fixed() { echo fixed; }
moving() { date +%s%N; }
calls=0
third() { calls=$((calls + 1)) && [ "$calls" -ge 3 ]; }
began=$SECONDS
if out=$( (wait_for "a stalled wait" 2 60 never fixed) 2>&1); then die "wait_for returned without progress"; fi
[ $((SECONDS - began)) -lt 30 ] || die "wait_for without progress took $((SECONDS - began)) s to fail, its stall is 2 s"
grep -q "nothing advanced for [0-9]* s (at most 2).*open transactions holding ids on the cluster" <<<"$out" \
  || die "wait_for without progress failed without saying so: $out"
if out=$( (wait_for "an endless wait" 60 3 never moving) 2>&1); then die "wait_for returned past its limit"; fi
grep -q "s in all (at most 3)" <<<"$out" || die "wait_for past its limit failed without saying so: $out"
wait_for "a wait that ends" 2 60 third fixed
log "script checks passed"
