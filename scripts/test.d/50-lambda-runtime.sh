#!/usr/bin/env bash
# The Lambda functions as AWS builds and runs them (issue 7, items 1 and 5):
#   1. `sam validate --lint` and `sam build` of the zip functions without Docker (make sam-build);
#      the dbt-runner is a container image, whose build needs Docker: its bootstrap is built with
#      make lambda-dbt-runner instead. No Lambda links DuckDB (go list -deps with the Lambda tags).
#   2. The runtime contract: each bootstrap, built for this machine's architecture with the same
#      flags, answers sample events under aws-lambda-rie, one invocation at a time per emulator
#      (it cannot take two at once), against real parts: a throwaway Postgres database, the local
#      S3 (fin s3), fakesnow, and dbt on DuckDB. A handler error must come back as
#      errorMessage/errorType. See docs/operations.md, "Lambda runtime contract".
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

export PGPASSFILE=${PGPASSFILE:-$FIN_PGPASSFILE} SAM_CLI_TELEMETRY=0
db=fin_rie_$$
admin="postgres://fin@127.0.0.1:$FIN_PG_PORT/fin?sslmode=disable"
work=$(mktemp -d "${TMPDIR:-/tmp}/fin-rie.XXXXXX")
pids=()
cleanup() {
  status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$status" != 0 ]; then # keep the logs of a failed run
    mkdir -p "$FIN_ROOT/.fin/test-artifacts/lambda-runtime"
    cp "$work"/*.log "$work"/*.json "$FIN_ROOT/.fin/test-artifacts/lambda-runtime/" 2>/dev/null || true
    log "logs kept in .fin/test-artifacts/lambda-runtime"
  fi
  psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT


# ------------------------------------------------------------------ 1. sam build, no Docker
log "sam validate --lint and sam build (zip functions, makefile build method)"
make -s sam-build >"$work/sam-build.log" 2>&1 || die "make sam-build failed: $(tail -30 "$work/sam-build.log")"
for fn in ApiFunction CdcLandingFunction CdcLandingSelfManagedFunction WarehouseLoaderFunction; do
  boot=.aws-sam/build/$fn/bootstrap
  [ -x "$boot" ] || die "sam build left no executable $boot"
  # ELF header: e_machine 183 is AArch64, as template.yaml's Architectures [arm64] requires.
  machine=$(od -An -t u2 -j 18 -N 2 "$boot" | tr -d ' ')
  [ "$machine" = 183 ] || die "$boot is built for ELF machine $machine, not arm64 (183)"
done
grep -q "CodeUri: ApiFunction" .aws-sam/build/template.yaml || die "sam build wrote no built template"
log "dbt-runner is a container image (sam build needs Docker for it): make lambda-dbt-runner"
make -s lambda-dbt-runner || die "make lambda-dbt-runner failed"

log "no Lambda links DuckDB, nor the API Lambda gosnowflake (go list -deps with the Lambda flags); no shipped binary links a test fixture"
for dir in functions/*/; do
  fn=$(basename "$dir")
  deps=$(CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go list -deps -tags lambda.norpc,minicore_disabled "./functions/$fn")
  grep -qx github.com/aws/aws-lambda-go/lambda <<<"$deps" \
    || die "go list -deps of functions/$fn does not list aws-lambda-go: not a Lambda's dependencies?"
  if grep -i duckdb <<<"$deps"; then
    die "functions/$fn links DuckDB (the packages above); DuckDB is cgo and must stay out of Lambda"
  fi
  [ "$fn" = api ] && api_deps=$deps
done
# Test fixtures (shared/pgtest, shared/oidctest, shared/bronze/bronzetest: the module's *test
# packages) are for tests and cmd/finbench; what is shipped or run by users never links them.
mod=$(go list -m)
fixtures=$(go list "$mod/..." | grep -E 'test$' || true)
[ -n "$fixtures" ] || die "go list finds no *test fixture package in $mod: the check below would check nothing"
linked=$(go list -deps ./cmd/fin ./functions/... | grep -Fx "$fixtures" || true)
[ -z "$linked" ] || die "a shipped binary (cmd/fin or a Lambda) links test fixtures: $linked (go list -deps ./cmd/fin ./functions/...)"
log "ok: cmd/fin and the Lambdas link none of: $(tr '\n' ' ' <<<"$fixtures")"
# The API bootstrap's 15 MB budget has no room for gosnowflake (about 9 MB): history reads
# Snowflake through shared/warehouse/snowflakeapi (docs/api.md).
grep -qx github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflakeapi <<<"$api_deps" \
  || die "functions/api does not read Snowflake through shared/warehouse/snowflakeapi"
if grep snowflakedb/gosnowflake <<<"$api_deps"; then
  die "functions/api links gosnowflake (the packages above); read Snowflake through shared/warehouse/snowflakeapi"
fi

# ------------------------------------------------------------------ 2. the runtime contract
rie=$(bash scripts/rie.sh)
bash scripts/venv.sh >/dev/null
arch=$(go env GOARCH)
log "bootstraps for $arch (aws-lambda-rie runs this machine's binaries), same flags otherwise"
for dir in functions/*/; do
  fn=$(basename "$dir")
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -tags lambda.norpc,minicore_disabled -trimpath \
    -ldflags='-s -w' -o "$work/$fn/bootstrap" "./functions/$fn" || die "build functions/$fn for $arch failed"
done
go build -o bin/fin ./cmd/fin

# rie_start FN [VAR=value...]: runs FN's bootstrap under its own emulator on ephemeral ports with
# the given environment; rie_url is where it takes invocations.
rie_pid="" rie_url=""
rie_start() {
  local fn=$1 p1 p2
  shift
  p1=$(free_port) p2=$(free_port)
  (cd "$work/$fn" && exec env "$@" AWS_LAMBDA_FUNCTION_NAME="$fn" AWS_LAMBDA_FUNCTION_TIMEOUT=300 \
    "$rie" --runtime-interface-emulator-address "127.0.0.1:$p1" --runtime-api-address "127.0.0.1:$p2" ./bootstrap) \
    >>"$work/$fn.log" 2>&1 &
  rie_pid=$!
  pids+=("$rie_pid")
  rie_url="http://127.0.0.1:$p1/2015-03-31/functions/function/invocations"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p1") 2>/dev/null && return 0
    kill -0 "$rie_pid" 2>/dev/null || die "aws-lambda-rie for $fn exited: $(tail -5 "$work/$fn.log")"
    sleep 0.1
  done
  die "aws-lambda-rie for $fn did not listen on 127.0.0.1:$p1"
}
rie_stop() { kill "$rie_pid" 2>/dev/null || true; wait "$rie_pid" 2>/dev/null || true; }

# invoke NAME EVENT_JSON: one invocation (they are sequential: rie takes one at a time); the
# response is kept in $work/NAME.json for expect.
invoke() {
  printf '%s' "$2" >"$work/$1.event.json"
  curl -sS --max-time 300 -X POST "$rie_url" --data-binary "@$work/$1.event.json" -o "$work/$1.json" \
    || die "invocation $1 failed: $(tail -5 "$work"/*.log)"
}

# expect NAME PYTHON_CONDITION WHAT: the response r (parsed JSON) must satisfy the condition;
# b is r["body"] parsed when it is a JSON string (an HTTP API answer).
expect() {
  python3 - "$work/$1.json" "$2" <<'PY' || die "$1: $3 (response: $(head -c 2000 "$work/$1.json"))"
import json, sys
r = json.load(open(sys.argv[1]))
b = None
if isinstance(r, dict) and isinstance(r.get("body"), str):
    try:
        b = json.loads(r["body"])
    except ValueError:
        pass
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
  log "ok: $1: $3"
}

# An API Gateway HTTP API (payload 2.0) request.
http_event() { # METHOD PATH [TOKEN] [BODY]
  python3 - "$@" <<'PY'
import json, sys
method, path = sys.argv[1], sys.argv[2]
token = sys.argv[3] if len(sys.argv) > 3 else ""
body = sys.argv[4] if len(sys.argv) > 4 else None
headers = {"content-type": "application/json", "user-agent": "rie-contract-test"}
if token:
    headers["authorization"] = "Bearer " + token
ev = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
      "headers": headers, "isBase64Encoded": False,
      "requestContext": {"accountId": "123456789012", "apiId": "rie", "domainName": "rie.local",
                         "stage": "$default", "requestId": "rie-" + method + path, "timeEpoch": 0,
                         "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                  "sourceIp": "127.0.0.1", "userAgent": "rie-contract-test"}}}
if body is not None:
    ev["body"] = body
print(json.dumps(ev))
PY
}

# --- api: HTTP API v2 events against a throwaway database
log "api under aws-lambda-rie"
psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null
export DATABASE_URL="postgres://fin@127.0.0.1:$FIN_PG_PORT/$db?sslmode=disable"
bin/fin migrate >"$work/migrate.log" 2>&1 || die "fin migrate failed: $(tail -5 "$work/migrate.log")"
FIN_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
export FIN_JWT_SECRET
token=$(bin/fin token -scopes bank:read,bank:write -subject rie)
rie_start api DATABASE_URL="$DATABASE_URL" FIN_JWT_SECRET="$FIN_JWT_SECRET" PGPASSFILE="$PGPASSFILE"
invoke api-health "$(http_event GET /healthz)"
expect api-health 'r["statusCode"] == 200' "GET /healthz answers 200 without a token"
invoke api-anonymous "$(http_event GET /customers)"
expect api-anonymous 'r["statusCode"] == 401' "GET /customers without a token answers 401"
invoke api-create "$(http_event POST /customers "$token" '{"first_name":"Rie","last_name":"Contract","email":"rie@example.com"}')"
expect api-create 'r["statusCode"] == 201 and b["email"] == "rie@example.com" and b["customer_id"]' \
  "POST /customers with a token answers 201 with the customer"
customer=$(python3 -c 'import json,sys; print(json.loads(json.load(open(sys.argv[1]))["body"])["customer_id"])' "$work/api-create.json")
invoke api-get "$(http_event GET "/customers/$customer" "$token")"
expect api-get "r['statusCode'] == 200 and b['customer_id'] == '$customer' and b['last_name'] == 'Contract'" \
  "GET /customers/{id} with a token reads it back from Postgres"
invoke api-missing "$(http_event GET /customers/00000000-0000-0000-0000-000000000000 "$token")"
expect api-missing 'r["statusCode"] == 404' "GET of an unknown customer answers 404"
# The housekeeping schedule's event (template.yaml's Input), as EventBridge delivers it.
psql -X -q "$DATABASE_URL" -c "INSERT INTO idempotency_keys (principal, idem_key, method, path, request_hash, expires_at)
  VALUES ('rie', 'expired', 'POST', '/customers', '\\x00', now() - interval '1 minute')" >/dev/null
invoke api-housekeeping "$(python3 -c 'import sys, yaml
class L(yaml.SafeLoader): pass
L.add_multi_constructor("!", lambda l, s, n: None)
t = yaml.load(open("template.yaml"), Loader=L)
print(t["Resources"]["ApiFunction"]["Properties"]["Events"]["PurgeIdempotencyKeys"]["Properties"]["Input"])')"
expect api-housekeeping 'r["housekeeping"] == "purge-idempotency-keys" and r["purged"] >= 1' \
  "the housekeeping schedule's event purges expired idempotency keys"
rie_stop
unset DATABASE_URL FIN_JWT_SECRET

# --- cdc-landing: an MSK event against the local S3
log "cdc-landing under aws-lambda-rie"
s3dir=$work/s3 s3addr=127.0.0.1:$(free_port)
# In the functions' region (AWS_REGION below): S3 refuses requests signed for another one.
FIN_STATE_DIR=$work bin/fin s3 -addr "$s3addr" -dir "$s3dir" -bucket lake -region eu-west-1 >"$work/s3.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/${s3addr/://}") 2>/dev/null && break; sleep 0.1; done
# The local S3 takes only requests signed with the key pair fin s3 made in its state directory;
# the functions get it as Lambda gives them their role's.
s3_key=$(sed -n 's/^aws_access_key_id = //p' "$work/s3-credentials" 2>/dev/null || true)
s3_secret=$(sed -n 's/^aws_secret_access_key = //p' "$work/s3-credentials" 2>/dev/null || true)
{ [ -n "$s3_key" ] && [ -n "$s3_secret" ]; } || die "fin s3 made no credentials in $work/s3-credentials: $(tail -5 "$work/s3.log")"
kafka_event() {
  python3 - <<'PY'
import base64, json, time
b64 = lambda s: base64.b64encode(s.encode()).decode()
now_ms = int(time.time() * 1000)
cid = "5b0c3a57-0000-4000-8000-00000000a001"
after = {"customer_id": cid, "first_name": "Rie", "last_name": "Contract", "email": "rie@example.com",
         "address_line": None, "city": None, "postal_code": None, "country": "US", "closed_at": None,
         "created_at": "2026-11-25T10:00:00.000000Z", "updated_at": "2026-11-25T10:00:00.000000Z", "version": 1}
change = {"before": None, "after": after,
          "source": {"version": "3.6.1.Final", "connector": "postgresql", "name": "fin", "ts_ms": now_ms,
                     "snapshot": "false", "db": "fin", "sequence": "[null,\"23456\"]", "ts_us": now_ms * 1000,
                     "ts_ns": now_ms * 1000000, "schema": "public", "table": "customers", "txId": 777,
                     "lsn": 23456, "xmin": None},
          "transaction": None, "op": "c", "ts_ms": now_ms + 3, "ts_us": (now_ms + 3) * 1000,
          "ts_ns": (now_ms + 3) * 1000000}
def record(offset, value):
    return {"topic": "fin.public.customers", "partition": 0, "offset": offset, "timestamp": now_ms,
            "timestampType": "CREATE_TIME", "key": b64(json.dumps({"customer_id": cid})),
            "value": b64(value), "headers": []}
print(json.dumps({
    "eventSource": "aws:kafka",
    "eventSourceArn": "arn:aws:kafka:eu-west-1:123456789012:cluster/fin-rie/00000000-0000-0000-0000-000000000000-1",
    "bootstrapServers": "b-1.fin-rie.kafka.eu-west-1.amazonaws.com:9098",
    # offset 41 is not a change event: it goes to the DLQ, and the batch still lands
    "records": {"fin.public.customers-0": [record(40, json.dumps(change)), record(41, "not json {")]}}))
PY
}
rie_start cdc-landing LAKE_BUCKET=lake S3_ENDPOINT="http://$s3addr" AWS_REGION=eu-west-1 \
  AWS_ACCESS_KEY_ID="$s3_key" AWS_SECRET_ACCESS_KEY="$s3_secret"
invoke landing "$(kafka_event)"
expect landing 'not (r or {}).get("batchItemFailures") and "errorMessage" not in (r or {})' \
  "a Kafka event (MSK shape) is acknowledged with no batch item failures"
bronze_key=$(cd "$s3dir/buckets/lake" 2>/dev/null && find bronze -name '*.parquet' | head -1)
[ -n "$bronze_key" ] || die "cdc-landing answered but no bronze object appeared in the local S3 ($(find "$s3dir" -type f))"
case "$bronze_key" in bronze/customers/*) ;; *) die "bronze object $bronze_key is not under bronze/customers/" ;; esac
dlq_key=$(cd "$s3dir/buckets/lake" && find dlq -type f | head -1)
[ -n "$dlq_key" ] || die "the undecodable record did not reach the DLQ ($(find "$s3dir" -type f))"
log "ok: landing: $bronze_key and $dlq_key are in the local S3"
# The metrics CloudWatch reads: Embedded Metric Format lines on stdout.
grep -Eq '"DLQRecords":1,.*"Function":"cdc-landing"' "$work/cdc-landing.log" \
  || die "cdc-landing wrote no EMF line counting the DLQ record on stdout: $(tail -5 "$work/cdc-landing.log")"
log "ok: landing: EMF metrics on stdout"
rie_stop

# --- warehouse-loader: S3 events against fakesnow, loading the object cdc-landing just wrote
log "warehouse-loader under aws-lambda-rie (fakesnow)"
.venv/bin/fakesnow -s --host 127.0.0.1 >"$work/fakesnow.log" 2>&1 &
pids+=($!)
sf_port=""
for _ in $(seq 300); do
  sf_port=$(grep -o 'running on http://127\.0\.0\.1:[0-9]*' "$work/fakesnow.log" | grep -o '[0-9]*$' || true)
  [ -n "$sf_port" ] && break
  sleep 0.2
done
[ -n "$sf_port" ] || die "fakesnow did not start: $(tail -5 "$work/fakesnow.log")"
# The loader signs in with a key pair (no passwords); fakesnow accepts any key.
key=$(.venv/bin/python -c '
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
print(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())')
# sf_sql SQL...: runs statements on fakesnow as the administrator would; prints the last result.
sf_sql() {
  .venv/bin/python - "$sf_port" "$@" <<'PY'
import sys, snowflake.connector
con = snowflake.connector.connect(user="admin", password="fakesnow", account="fakesnow", database="FIN_RIE",
                                  host="127.0.0.1", port=int(sys.argv[1]), protocol="http")
cur = con.cursor()
for q in sys.argv[2:]:
    cur.execute(q)
print("\n".join("|".join(str(v) for v in row) for row in cur.fetchall()))
PY
}
s3_event() { # KEY [ETAG]: an S3 ObjectCreated notification, as the bucket sends it
  python3 - "$@" <<'PY'
import json, sys, urllib.parse
key, etag = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
print(json.dumps({"Records": [{
    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
    "eventTime": "2026-11-25T10:00:00.000Z", "eventName": "ObjectCreated:Put",
    "s3": {"s3SchemaVersion": "1.0", "configurationId": "BronzeObject",
           "bucket": {"name": "lake", "arn": "arn:aws:s3:::lake"},
           "object": {"key": urllib.parse.quote_plus(key), "size": 1, "eTag": etag, "sequencer": "01"}}}]}))
PY
}
rie_start warehouse-loader SNOWFLAKE_ACCOUNT=fakesnow SNOWFLAKE_USER=fin_loader SNOWFLAKE_DATABASE=FIN_RIE \
  SNOWFLAKE_WAREHOUSE=LOAD_WH SNOWFLAKE_ROLE=LOADER SNOWFLAKE_PRIVATE_KEY="$key" SNOWFLAKE_HOST=127.0.0.1 \
  SNOWFLAKE_PORT="$sf_port" SNOWFLAKE_PROTOCOL=http AWS_REGION=eu-west-1 \
  AWS_ACCESS_KEY_ID="$s3_key" AWS_SECRET_ACCESS_KEY="$s3_secret" AWS_ENDPOINT_URL_S3="http://$s3addr"
invoke loader-dlq "$(s3_event "$dlq_key")"
expect loader-dlq 'r is None' "a DLQ object's event succeeds (null) and is left unloaded"
# The stage over the bucket is the administrator's (fakesnow reads file:// URLs, not s3://).
sf_sql "CREATE STAGE IF NOT EXISTS RAW.BRONZE_STAGE URL = 'file://$s3dir/buckets/lake/'" >/dev/null \
  || die "could not create the stage on fakesnow"
etag=$(md5sum "$s3dir/buckets/lake/$bronze_key" | cut -d' ' -f1)
invoke loader-bronze "$(s3_event "$bronze_key" "\"$etag\"")"
expect loader-bronze 'r is None' "the bronze object's event succeeds"
got=$(sf_sql "SELECT count(*), max(op), max(after:email::varchar) FROM RAW.CUSTOMERS WHERE _object_key = '$bronze_key'")
[ "$got" = "1|c|rie@example.com" ] || die "RAW.CUSTOMERS holds '$got' for $bronze_key, want 1|c|rie@example.com (the landed insert)"
log "ok: loader-bronze: the landed change is in RAW.CUSTOMERS"
invoke loader-bad "$(s3_event bronze/nosuchtable/dt=2026-11-25/fin.public.nosuchtable-0-0-0-00000000.parquet)"
expect loader-bad '"unknown table" in r["errorMessage"] and "nosuchtable" in r["errorMessage"] and r["errorType"]' \
  "an object of an unknown table comes back as errorMessage/errorType"
grep -Eq '"Function":"warehouse-loader",.*"RowsLoaded":1,' "$work/warehouse-loader.log" \
  || die "warehouse-loader wrote no EMF line counting the loaded row on stdout: $(tail -5 "$work/warehouse-loader.log")"
log "ok: loader: EMF metrics on stdout"
rie_stop

# --- dbt-runner: a Scheduled Event, dbt build on DuckDB over RAW fixture tables
log "dbt-runner under aws-lambda-rie (dbt-duckdb)"
.venv/bin/python scripts/dbt/raw_events.py duckdb "$work/warehouse.duckdb" scenario \
  || die "could not write the RAW fixture tables"
scheduled='{"version":"0","id":"rie-dbt-1","detail-type":"Scheduled Event","source":"aws.events",
  "account":"123456789012","time":"2026-11-25T12:00:00Z","region":"eu-west-1",
  "resources":["arn:aws:events:eu-west-1:123456789012:rule/fin-dbt-build-dev"],"detail":{}}'
rie_start dbt-runner DBT_TARGET=duckdb DBT_BIN="$FIN_ROOT/.venv/bin/dbt" DBT_PROJECT_DIR="$FIN_ROOT/dbt" \
  DBT_WORK_DIR="$work/dbt" WAREHOUSE_PATH="$work/warehouse.duckdb" DBT_SEND_ANONYMOUS_USAGE_STATS=false
invoke dbt-bad "${scheduled/\"detail\":\{\}/\"detail\":\{\"selct\":\"gold\"\}}"
expect dbt-bad '"selct" in r["errorMessage"] and r["errorType"]' \
  "a detail dbt-runner cannot read comes back as errorMessage/errorType"
invoke dbt "$scheduled"
expect dbt 'r["models_built"] > 0 and r["models_failed"] == 0 and r["tests_passed"] > 0 and r["tests_failed"] == 0' \
  "a Scheduled Event runs dbt build: models built, tests passed, none failed"
rie_stop
n=$(.venv/bin/python -c 'import duckdb, sys; print(duckdb.connect(sys.argv[1], read_only=True).execute("select count(*) from gold.dim_customers").fetchone()[0])' "$work/warehouse.duckdb")
[ "$n" -gt 0 ] || die "gold.dim_customers is empty after the dbt-runner's build"
log "ok: dbt: gold.dim_customers holds $n versions"
log "every Lambda answered its sample events under aws-lambda-rie"
