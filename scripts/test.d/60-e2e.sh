#!/usr/bin/env bash
# End to end, as a user would run it: a data set, `fin up` (every function of template.yaml with
# its event sources), activity from the generator and writes through the API, then `fin
# reconcile` must find Postgres and the warehouse in agreement. Then kill -9 the runtime in the
# middle of the stream, restart it, and reconciliation must still pass: nothing lost.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

go build -o bin/fin ./cmd/fin
throwaway_stack e2e
export FIN_DBT_SCHEDULE="rate(1 minute)"
api=http://$API_ADDR
mkdir -p "$FIN_STATE_DIR"

up_pid="" gen_pid=""
cleanup() {
  status=$?
  if [ "$status" != 0 ]; then # keep the logs of a failed run
    mkdir -p "$FIN_ROOT/.fin/test-artifacts/e2e"
    cp -r "$work"/*.out "$FIN_STATE_DIR/logs" "$FIN_STATE_DIR"/*.duckdb "$FIN_ROOT/.fin/test-artifacts/e2e/" 2>/dev/null || true
    log "logs kept in .fin/test-artifacts/e2e"
  fi
  [ -n "$gen_pid" ] && kill "$gen_pid" 2>/dev/null
  [ -n "$up_pid" ] && kill "$up_pid" 2>/dev/null
  wait 2>/dev/null || true
  psql -X -q "$admin" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$FIN_CAPTURE_SLOT'" \
    -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -X -q "$admin" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$FIN_CAPTURE_SLOT'" \
  -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null

cat >"$work/config.yaml" <<YAML
seed: 2026
customers: 300
accounts: 450
transactions: 6000
continuous:
  rate: 40
YAML

log "initial data set"
bin/fin generate --once --config "$work/config.yaml" >/dev/null
log "fin up"
stack_up "$work/up.out" --no-generate --config "$work/config.yaml"
# The activity below must be streamed (its transactions' ENDs, the customer's versions): wait for
# the capture's slot first, which a neighbour's open transaction can hold for minutes.
wait_captured

log "the API's docs are public through fin up's gateway, its data is not"
for path in /docs /docs/swagger-ui.css /openapi.json /openapi.yaml; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$api$path")
  [ "$code" = 200 ] || die "GET $path without a token answered $code, want 200 (template.yaml routes it with Authorizer: NONE)"
done
code=$(curl -s -o "$work/anonymous.out" -w '%{http_code}' "$api/customers")
{ [ "$code" = 401 ] && grep -qxF '{"message":"Unauthorized"}' "$work/anonymous.out"; } \
  || die "GET /customers without a token answered $code $(cat "$work/anonymous.out"), want API Gateway's 401"

log "activity: the generator, and writes through the API"
bin/fin generate --config "$work/config.yaml" >"$work/gen.out" 2>&1 &
gen_pid=$!
token=$(bin/fin token --scopes bank:read,bank:write)
call() { # method path [body] -> prints the body, fails on a non-2xx status
  local out code
  out=$(curl -s -w '\n%{http_code}' -X "$1" "$api$2" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: e2e-$RANDOM-$RANDOM" ${3:+--data "$3"})
  code=${out##*$'\n'}
  [[ "$code" == 2* ]] || die "$1 $2 answered $code: ${out%$'\n'*}"
  printf '%s' "${out%$'\n'*}"
}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
cust=$(call POST /customers '{"first_name":"Edda","last_name":"Test","email":"edda.e2e@example.com"}' | json "['customer_id']")
a1=$(call POST /accounts "{\"customer_id\":\"$cust\",\"account_type\":\"CHECKING\",\"currency\":\"EUR\"}" | json "['account_id']")
a2=$(call POST /accounts "{\"customer_id\":\"$cust\",\"account_type\":\"SAVINGS\",\"currency\":\"EUR\"}" | json "['account_id']")
call POST /transactions "{\"account_id\":\"$a1\",\"transaction_type\":\"DEPOSIT\",\"amount\":\"1000.10\"}" >/dev/null
tx=$(call POST /transactions "{\"account_id\":\"$a1\",\"transaction_type\":\"TRANSFER\",\"amount\":\"250.05\",\"related_account_id\":\"$a2\"}" | json "['transaction_id']")
call POST /transactions "{\"account_id\":\"$a1\",\"transaction_type\":\"WITHDRAWAL\",\"amount\":\"50.00\"}" >/dev/null
call DELETE "/transactions/$tx" >/dev/null
for n in 1 2 3; do
  call PUT "/customers/$cust" "{\"first_name\":\"Edda\",\"last_name\":\"Test\",\"email\":\"edda.e2e.$n@example.com\"}" >/dev/null
done
sleep 8

log "kill -9 the runtime mid-stream, then restart it"
kill -9 "$up_pid"
wait "$up_pid" 2>/dev/null || true
sleep 3
stack_up "$work/up.out" --no-generate --config "$work/config.yaml"
# A transaction after the restart: the new embedded broker is a new Kafka source whose offsets
# start again at 0, and gold's cut must still pass this transaction (checked after dbt runs).
after_restart=$(psql -X -At "$DATABASE_URL" -c "SELECT pg_current_wal_lsn() - '0/0'")
call PUT "/customers/$cust" '{"first_name":"Edda","last_name":"Test","email":"edda.e2e.4@example.com"}' >/dev/null
sleep 8
kill -INT "$gen_pid"
wait "$gen_pid" 2>/dev/null || true
gen_pid=""
grep -q "failed 0" "$work/gen.out" || log "generator reported failures: $(tail -1 "$work/gen.out")"

log "fin reconcile"
wait_captured
bin/fin reconcile --wait 120s || die "reconciliation failed after a kill -9 and restart"
log "every streamed transaction's END is in raw.transaction_metadata, and its events are all in RAW"
# The evidence of a consistent cut (docs/dbt.md): an END counts its transaction's events per
# table; RAW must hold exactly that many of each (distinct lsn, the same txId and commit
# millisecond), and every streamed event must belong to a transaction whose END is loaded.
torn_sql="with ends as (
  select distinct tx_id, commit_ts_us // 1000 as ms, after from raw.transaction_metadata where op = 'END'),
expected as (
  select e.tx_id, e.ms, json_extract_string(d.value, '\$.data_collection') as tbl,
    cast(json_extract(d.value, '\$.event_count') as bigint) as n
  from ends as e, json_each(json_extract(e.after, '\$.data_collections')) as d),
events as (
  select 'public.customers' as tbl, tx_id, commit_ts_us // 1000 as ms, lsn from raw.customers where snapshot = 'false'
  union all select 'public.accounts', tx_id, commit_ts_us // 1000, lsn from raw.accounts where snapshot = 'false'
  union all select 'public.transactions', tx_id, commit_ts_us // 1000, lsn from raw.transactions where snapshot = 'false'),
loaded as (select tbl, tx_id, ms, count(distinct lsn) as n from events group by tbl, tx_id, ms)
select
  (select count(*) from ends),
  (select count(*) from expected as x left join loaded as l using (tbl, tx_id, ms) where l.n is distinct from x.n),
  (select count(*) from loaded as l where not exists (select 1 from ends as e where e.tx_id = l.tx_id and e.ms = l.ms))"
whole() {
  evidence=$(bin/fin sql "$torn_sql" | tail -1)
  IFS=, read -r ends torn orphans <<<"$evidence"
  [ "${ends:-0}" -gt 0 ] && [ "$torn" = 0 ] && [ "$orphans" = 0 ]
}
# Progress is the evidence itself: ENDs loaded, torn counts shrinking as the loads come.
whole_progress() { printf '%s' "${evidence:-}"; }
wait_for "every transaction wholly in RAW with its END (progress: ENDs, (table, transaction) counts RAW does not match, transactions of streamed events without their END)" \
  60 600 whole whole_progress
log "$ends transactions, each wholly in RAW with its END"
balance=$(call GET "/accounts/$a1" | json "['balance']")
[ "$balance" = "950.10" ] || die "account $a1 balance $balance, want 950.10 (1000.10 - 50.00, the transfer reversed)"

log "the lake takes only signed requests, with the key pair fin up made (read by the aws CLI's botocore)"
creds=$FIN_STATE_DIR/s3-credentials
[ "$(stat -c %a "$creds")" = 600 ] || die "$creds has mode $(stat -c %a "$creds"), want 600"
code=$(curl -s -o "$work/unsigned.out" -w '%{http_code}' "http://$S3_ADDR/lake?list-type=2")
{ [ "$code" = 403 ] && grep -qF '<Code>AccessDenied</Code>' "$work/unsigned.out"; } \
  || die "an unsigned listing of the lake answered $code $(cat "$work/unsigned.out"), want S3's 403 AccessDenied"
key_id=$(sed -n 's/^aws_access_key_id = //p' "$creds")
secret=$(sed -n 's/^aws_secret_access_key = //p' "$creds")
bash scripts/venv.sh sam >/dev/null
AWS_SHARED_CREDENTIALS_FILE=$creds AWS_CONFIG_FILE=/dev/null .venv-sam/bin/python - "http://$S3_ADDR" "$key_id" <<'PY' \
  || die "a listing of bronze/ signed with $creds (profile fin-local) failed"
import sys, boto3
from botocore.config import Config
s3 = boto3.Session(profile_name="fin-local", region_name="us-east-1").client(
    "s3", endpoint_url=sys.argv[1], config=Config(signature_version="s3v4"))
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="bronze/")["Contents"]]
assert any(k.endswith(".parquet") for k in keys), keys
bad = boto3.Session(aws_access_key_id=sys.argv[2], aws_secret_access_key="x" * 40,
                    region_name="us-east-1").client("s3", endpoint_url=sys.argv[1])
try:
    bad.list_objects_v2(Bucket="lake")
    sys.exit("a listing signed with a wrong secret was accepted")
except bad.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e.response
PY
bin/fin status >"$work/status.out" 2>&1 || true
{ grep -qF "$creds" "$work/status.out" && grep -qF "$key_id" "$work/status.out"; } \
  || die "fin status does not show the S3 credentials file and key id: $(cat "$work/status.out")"
if grep -rqF "$secret" "$work/status.out" "$work/up.out" "$FIN_STATE_DIR/logs"; then
  die "the local S3's secret appears in fin status, fin up's output or the logs"
fi

log "dbt builds gold from the warehouse, and its first build passes"
# Strict: the first build that built models must pass. The topics land at their own pace, so a
# build's RAW snapshot can hold an account before its customer; the relationships tests check only
# the rows within the build's consistent cut (docs/dbt.md, "Relationships within the cut"), so such
# a build passes. Every build is in the console's run log (kept across the restart), oldest last.
runs_url="http://$CONSOLE_ADDR/api/runs?limit=500"
built_one() {
  runs=$(curl -fs -H "Authorization: Bearer $(cat "$FIN_STATE_DIR/sql.token")" "$runs_url" || true)
  built=$(python3 -c "import json,sys; r=json.loads(sys.argv[1] or '{}'); print(sum(1 for x in r.get('items') or [] if x.get('models', 0) > 0))" "$runs")
  [ "$built" -gt 0 ]
}
wait_for "a dbt build that built models" 180 900 built_one dbt_progress
python3 - "$runs" "http://$CONSOLE_ADDR" "$(cat "$FIN_STATE_DIR/sql.token")" <<'PY' || die "the first dbt build failed (or none built a model)"
import json, sys, urllib.request
runs = [r for r in reversed(json.loads(sys.argv[1] or '{"items": []}')["items"]) if r.get("models", 0) > 0]
if not runs:
    sys.exit(f"[60-e2e] no dbt build has built a model (the console's run log: {sys.argv[1]!r})")

def why(run):  # each failed node with dbt's message, from the run's detail
    req = urllib.request.Request(f"{sys.argv[2]}/api/runs/{run['id']}", headers={"Authorization": f"Bearer {sys.argv[3]}"})
    nodes = json.load(urllib.request.urlopen(req))["detail"]["nodes"]
    return "; ".join(f"{n['id']} {n['status']}: {n.get('message', '')}" for n in nodes if n["status"] in ("fail", "error")) or run.get("error")

failed = [r for r in runs if not r["ok"]]
for r in failed:
    print(f"[60-e2e] dbt build {r['id']} ended {r['ended']} ({r.get('selector') or 'everything'}) failed: {why(r)}")
first = runs[0]
print(f"[60-e2e] first build ended {first['ended']}: ok={first['ok']}, {first['models']} models, "
      f"{first['tests_passed']} tests passed; {len(runs)} builds, {len(failed)} failed")
sys.exit(0 if first["ok"] else 1)
PY
# dbt's console output is kept locally, as CloudWatch keeps it in AWS.
grep -q "Completed successfully" "$FIN_STATE_DIR/dbt/logs/console.log" \
  || die "the scheduled dbt build left no console output in $FIN_STATE_DIR/dbt/logs/console.log"
versions=$(bin/fin sql "select count(*) from gold.dim_customers where customer_id = '$cust'" | tail -1)
[ "$versions" -ge 4 ] || die "dim_customers holds $versions versions of $cust; want the insert and 3 updates"
log "gold's cut passes the transaction written after the restart"
cut_sql="select case when (select lsn from gold.cut) > $after_restart and exists (select 1 from gold.dim_customers
  where customer_id = '$cust' and email = 'edda.e2e.4@example.com') then 'passed' else 'not yet' end"
cut_passed() { [ "$(bin/fin sql "$cut_sql" | tail -1)" = passed ]; }
cut_progress() { bin/fin sql "select lsn from gold.cut" | tail -1; dbt_progress; }
wait_for "gold.cut past the update written after the restart (WAL position above $after_restart; progress: gold.cut's lsn, dbt's log)" \
  180 900 cut_passed cut_progress
versions=$(bin/fin sql "select count(*) from gold.dim_customers where customer_id = '$cust'" | tail -1)
[ "$versions" -ge 5 ] || die "dim_customers holds $versions versions of $cust; want the insert and 4 updates"
log "the history endpoint shows every version"
history=$(call GET "/customers/$cust/history")
python3 - "$history" "$versions" <<'PY' || die "GET /customers/$cust/history does not match dim_customers ($versions versions): $history"
import json, sys
h, want = json.loads(sys.argv[1]), int(sys.argv[2])
vs = h["data"]
emails = [v["email"] for v in vs]
assert len(vs) == want and not h["has_more"], f"{len(vs)} versions, want {want}"
assert emails[:4] == ["edda.e2e@example.com"] + [f"edda.e2e.{n}@example.com" for n in (1, 2, 3)], emails
assert [v["is_current"] for v in vs] == [False] * (want - 1) + [True], "only the last version is current"
assert all(a["valid_to"] == b["valid_from"] for a, b in zip(vs, vs[1:])), "each version ends where the next begins"
PY
# As of the first version's midpoint: the e-mail the customer was created with.
first=$(python3 -c "
import json, sys
from datetime import datetime
v = json.loads(sys.argv[1])['data'][0]
t = lambda s: datetime.fromisoformat(s.replace('Z', '+00:00'))
print((t(v['valid_from']) + (t(v['valid_to']) - t(v['valid_from'])) / 2).isoformat().replace('+00:00', 'Z'))" "$history")
email=$(call GET "/customers/$cust?as_of=$first" | json "['email']")
[ "$email" = "edda.e2e@example.com" ] || die "GET /customers/$cust?as_of=$first shows $email, want the first version's edda.e2e@example.com"
log "the console page in headless Chromium"
chromium=$(bash scripts/chromium.sh | tail -n 1)
console_url="http://$CONSOLE_ADDR/?token=$(cat "$FIN_STATE_DIR/sql.token")"
shot() {
  "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
    --user-data-dir="$work/chrome-$1" --window-size=1400,1000 --lang=en-US --virtual-time-budget=6000 "${@:2}" "$console_url" \
    2>>"$work/chromium.log"
}
shot dom --dump-dom >"$work/console.html" || die "chromium failed: $(tail -5 "$work/chromium.log")"
shot png --screenshot="$work/console.png" >/dev/null || die "chromium screenshot failed: $(tail -5 "$work/chromium.log")"
mkdir -p "$FIN_ROOT/.fin/test-artifacts" && cp "$work/console.png" "$FIN_ROOT/.fin/test-artifacts/console.png"
pg_tx=$(psql -X -At "$DATABASE_URL" -c "SELECT to_char(count(*), 'FM999,999,999') FROM transactions")
for want in "updated " ">capture<" ">transactions<" "$pg_tx" "DLQ objects" "passed"; do
  grep -qF "$want" "$work/console.html" || die "the console page lacks \"$want\" (DOM: $(head -c 400 "$work/console.html"))"
done
grep -q '<circle cx=' "$work/console.html" || die "the console's freshness chart has no points"
# The green "ok" pills are drawn only by a page whose script fetched /api/status and rendered it.
python3 scripts/pngcolors.py "$work/console.png" 1000 '#1a7f37' \
  || die "the console screenshot does not show the health pills (kept in .fin/test-artifacts/console.png)"
log "end-to-end passed"
