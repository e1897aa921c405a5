#!/usr/bin/env bash
# sam local for people with Docker, as far as a machine without Docker goes (issue 13, item 8):
#   1. What `sam local` gives each function's container, worked out by the SAM CLI's own code from
#      samconfig.toml's [local] sections, localstack/sam-env.json and template.yaml, and checked
#      against docker-compose.yml (localstack/check_sam_local.py).
#   2. LocalStack's ready hook (localstack/ready.d/10-fin.sh) against Moto's server, which speaks
#      the same S3, SQS, STS and Secrets Manager APIs without Docker: run, then run again with
#      another database URL, and every resource must exist with template.yaml's settings, under
#      the names sam-env.json uses. awslocal (awscli-local) is pointed at Moto by LOCALSTACK_HOST.
#   3. The API and cdc-landing bootstraps under aws-lambda-rie with exactly the environment of 1.,
#      on what 2. made: the API reads its database URL from the hook's secret and takes the tokens
#      of the compose file's mock OpenID provider (run from its jars), refusing none or another
#      issuer's; the landing writes its bronze object into the hook's bucket.
# Not here: containers (no Docker engine), `sam build` (50-lambda-runtime.sh), the env-vars file
# against each function's settings (go test ./localstack/). About two minutes.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/venv.sh sam
bash scripts/venv.sh moto

work=$(mktemp -d "${TMPDIR:-/tmp}/fin-sam-local.XXXXXX")
export PGPASSFILE=${PGPASSFILE:-$FIN_PGPASSFILE}
db=fin_samlocal_$$
admin="postgres://fin@127.0.0.1:$FIN_PG_PORT/fin?sslmode=disable"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

log "what sam local gives each function (SAM CLI's own resolution)"
mkdir "$work/env"
SAM_CLI_TELEMETRY=0 AWS_ACCESS_KEY_ID=sam-local AWS_SECRET_ACCESS_KEY=sam-local \
  .venv-sam/bin/python localstack/check_sam_local.py "$work/env" || die "sam local would not give the functions their settings (above)"

# LocalStack's default account, which the names in sam-env.json carry.
port=$(free_port)
MOTO_ACCOUNT_ID=000000000000 .venv-moto/bin/moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null || die "moto_server did not start: $(tail -5 "$work/moto.log")"
log "moto_server on 127.0.0.1:$port"

# The hook as LocalStack runs it (STAGE, AWS_DEFAULT_REGION and FIN_DATABASE_URL from
# docker-compose.yml), with awslocal and the aws CLI from .venv-moto.
hook() {
  PATH="$FIN_ROOT/.venv-moto/bin:$PATH" LOCALSTACK_HOST=127.0.0.1:$port DISABLE_DEPRECATION_NOTICE=1 \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test STAGE=dev AWS_DEFAULT_REGION=eu-west-1 \
    FIN_DATABASE_URL=$1 bash localstack/ready.d/10-fin.sh >>"$work/hook.log" 2>&1 \
    || die "the ready hook failed: $(tail -20 "$work/hook.log")"
}
on_moto() { # [ARG]: runs the Python on stdin with boto3; its arguments: Moto's port, ARG
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test .venv-moto/bin/python - "$port" "$@"
}
log "ready hook, first run"
hook 'postgres://fin:first@postgres:5432/fin?sslmode=disable'
# Someone puts their Snowflake values into the placeholder: a rerun must keep them.
on_moto <<'PY'
import boto3, sys
boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="eu-west-1").put_secret_value(
    SecretId="fin/dev/snowflake", SecretString='{"account": "mine"}')
PY
# The second run names a throwaway database of the project's cluster, which the API reaches below.
bash scripts/postgres.sh >/dev/null 2>&1 || die "Postgres did not start (run scripts/postgres.sh to see why)"
psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null
db_url="postgres://fin@127.0.0.1:$FIN_PG_PORT/$db?sslmode=disable"
log "ready hook, second run (another database URL)"
hook "$db_url"

log "the resources, against template.yaml and sam-env.json"
on_moto "$db_url" <<'PY' || die "the ready hook left LocalStack unlike what template.yaml and sam-env.json expect (above)"
import json, sys
import boto3, yaml

endpoint = f"http://127.0.0.1:{sys.argv[1]}"
s3, sqs, sm = (boto3.client(s, endpoint_url=endpoint, region_name="eu-west-1") for s in ("s3", "sqs", "secretsmanager"))

class Loader(yaml.SafeLoader):  # template.yaml's !Ref, !Sub, ... as plain values
    pass
Loader.add_multi_constructor("!", lambda loader, suffix, node: None if isinstance(node, yaml.ScalarNode) and not node.value else
                             loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else
                             loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node))
res = yaml.load(open("template.yaml"), Loader=Loader)["Resources"]
env = json.load(open("localstack/sam-env.json"))
problems = []
def want(what, got, expected):
    if got != expected:
        problems.append(f"{what}: {got!r}, want {expected!r}")

bucket = env["CdcLandingFunction"]["LAKE_BUCKET"]
want("sam-env.json's LAKE_BUCKET is the same for both landing functions", env["CdcLandingSelfManagedFunction"]["LAKE_BUCKET"], bucket)
bucket_props = res["BronzeBucket"]["Properties"]
try:
    want(f"{bucket} region", s3.get_bucket_location(Bucket=bucket)["LocationConstraint"], "eu-west-1")
except s3.exceptions.ClientError as e:
    sys.exit(f"the bucket sam-env.json names (LAKE_BUCKET={bucket}) does not exist: {e}")
want(f"{bucket} versioning", s3.get_bucket_versioning(Bucket=bucket).get("Status"), bucket_props["VersioningConfiguration"]["Status"])
block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
want(f"{bucket} public access block", block, bucket_props["PublicAccessBlockConfiguration"])
rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
template_rule = bucket_props["LifecycleConfiguration"]["Rules"][0]
want(f"{bucket} lifecycle", [(r["ID"], r["Status"], r["NoncurrentVersionExpiration"]["NoncurrentDays"]) for r in rules],
     [(template_rule["Id"], template_rule["Status"], template_rule["NoncurrentVersionExpiration"]["NoncurrentDays"])])

event = res["WarehouseLoaderFunction"]["Properties"]["Events"]["BronzeObject"]["Properties"]
events_queue = sqs.get_queue_url(QueueName="fin-bronze-events-dev")["QueueUrl"]
events_arn = sqs.get_queue_attributes(QueueUrl=events_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
notes = s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations", [])
want(f"{bucket} notifications", [(n["QueueArn"], n["Events"], sorted((r["Name"].lower(), r["Value"]) for r in n["Filter"]["Key"]["FilterRules"]))
                                 for n in notes],
     [(events_arn, [event["Events"]], sorted((r["Name"], r["Value"]) for r in event["Filter"]["S3Key"]["Rules"]))])

queue_props = res["FailedInvocations"]["Properties"]
failed = sqs.get_queue_url(QueueName="fin-failed-invocations-dev")["QueueUrl"]
attrs = sqs.get_queue_attributes(QueueUrl=failed, AttributeNames=["All"])["Attributes"]
want("fin-failed-invocations-dev MessageRetentionPeriod", attrs.get("MessageRetentionPeriod"), str(queue_props["MessageRetentionPeriod"]))
want("fin-failed-invocations-dev SqsManagedSseEnabled", attrs.get("SqsManagedSseEnabled"), str(queue_props["SqsManagedSseEnabled"]).lower())

# Every secret sam-env.json names exists; the database one holds the latest URL, and the
# Snowflake one what its owner put there.
names = {v for fn in env.values() for k, v in fn.items() if k in ("DATABASE_SECRET_ARN", "SNOWFLAKE_SECRET_ID") and v}
want("secrets sam-env.json names", sorted(names), ["fin/dev/database", "fin/dev/snowflake"])
for name in sorted(names):
    try:
        value = sm.get_secret_value(SecretId=name)["SecretString"]
    except sm.exceptions.ResourceNotFoundException:
        problems.append(f"secret {name}, named in sam-env.json, does not exist")
        continue
    if name.endswith("/database"):
        want(f"{name}", json.loads(value), {"url": sys.argv[2]})
    else:
        want(f"{name} (set by its owner, then the hook ran again)", json.loads(value), {"account": "mine"})

if problems:
    sys.exit("\n".join(problems))
print(f"s3://{bucket}, its notification to {events_arn}, the failed-invocations queue and {len(names)} secrets as expected")
PY

# Two bootstraps (this machine's architecture, Lambda's flags) under aws-lambda-rie, each with
# exactly the environment SAM resolved for its container, the compose host names mapped to this
# machine: LocalStack's to Moto, the OpenID provider's to the same mock-oauth2-server (its jars,
# with the compose file's own JSON_CONFIG), and the database secret (the hook's second run)
# naming the throwaway database, whose password comes from PGPASSFILE here.
log "the API and the landing under aws-lambda-rie with sam local's environment, on Moto"
rie=$(bash scripts/rie.sh)
go build -o bin/fin ./cmd/fin
DATABASE_URL=$db_url bin/fin migrate >/dev/null 2>"$work/migrate.log" || die "fin migrate on $db failed: $(tail -5 "$work/migrate.log")"
for fn in api cdc-landing; do
  CGO_ENABLED=0 GOOS=linux GOARCH="$(go env GOARCH)" go build -tags lambda.norpc,minicore_disabled -trimpath \
    -o "$work/$fn/bootstrap" "./functions/$fn" || die "build functions/$fn failed"
done

# shellcheck source=scripts/jvm.sh
. scripts/jvm.sh
{ read -r oauth_version; read -r oauth_config; } < <(.venv-moto/bin/python - <<'PY'
import json, yaml
svc = yaml.safe_load(open("docker-compose.yml"))["services"]["oauth"]
print(svc["image"].rsplit(":", 1)[1])
print(json.dumps(json.loads(svc["environment"]["JSON_CONFIG"])))
PY
)
oauth_jars=${XDG_CACHE_HOME:-$HOME/.cache}/fin-orchestrator/mock-oauth2-server-$oauth_version
fetch_jars "$oauth_jars" "no.nav.security:mock-oauth2-server:$oauth_version"
oport=$(free_port)
SERVER_PORT=$oport JSON_CONFIG=$oauth_config java -cp "$oauth_jars/*" no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt \
  >"$work/oauth.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$oport/fin/jwks" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$oport/fin/jwks" >/dev/null || die "mock-oauth2-server did not start: $(tail -5 "$work/oauth.log")"
# token ISSUER_ID: a client-credentials token, asked for as the README asks for it.
token() {
  curl -fsS -d grant_type=client_credentials -d client_id=fin-local -d client_secret=unused "http://127.0.0.1:$oport/$1/token" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

# start_as_sam_local LOGICAL_ID DIR: functions/DIR's bootstrap with LOGICAL_ID's environment and
# nothing else (env -i); invoke EVENT_FILE then takes one invocation and prints the response.
rie_pid="" rie_url=""
start_as_sam_local() {
  local p1 p2 vars
  [ -z "$rie_pid" ] || kill "$rie_pid" 2>/dev/null || true
  p1=$(free_port) p2=$(free_port)
  mapfile -t vars < <(python3 - "$work/env/$1.json" "$port" "$oport" <<'PY'
import json, sys
moto, oauth = (f"http://127.0.0.1:{p}" for p in sys.argv[2:4])
hosts = {"http://localstack:4566": moto, "http://s3.localhost.localstack.cloud:4566": moto,
         "http://oauth:8080": oauth, "http://127.0.0.1:8090": oauth}
for k, v in sorted(json.load(open(sys.argv[1])).items()):
    for compose, here in hosts.items():
        v = v.replace(compose, here)
    print(f"{k}={v}")
PY
)
  (cd "$work/$2" && exec env -i PATH="$PATH" PGPASSFILE="$PGPASSFILE" "${vars[@]}" \
    "$rie" --runtime-interface-emulator-address "127.0.0.1:$p1" --runtime-api-address "127.0.0.1:$p2" ./bootstrap) \
    >>"$work/$2.log" 2>&1 &
  rie_pid=$!
  pids+=("$rie_pid")
  rie_url="http://127.0.0.1:$p1/2015-03-31/functions/function/invocations"
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p1") 2>/dev/null && return 0; sleep 0.1; done
  die "aws-lambda-rie for $1 did not listen: $(tail -5 "$work/$2.log")"
}
invoke() {
  curl -sS --max-time 60 -X POST "$rie_url" --data-binary "@$1" || die "no answer to $1: $(tail -5 "$work"/*.log)"
}
# api_event PATH QUERY [TOKEN]: localstack/events/healthz.json turned into another GET.
api_event() {
  python3 - "$@" >"$work/event.json" <<'PY'
import json, sys
ev = json.load(open("localstack/events/healthz.json"))
path, query = sys.argv[1], sys.argv[2]
ev.update(rawPath=path, rawQueryString=query, routeKey="ANY /{proxy+}")
ev["requestContext"].update(routeKey="ANY /{proxy+}")
ev["requestContext"]["http"]["path"] = path
if len(sys.argv) > 3:
    ev["headers"]["authorization"] = "Bearer " + sys.argv[3]
print(json.dumps(ev))
PY
  echo "$work/event.json"
}
# status WHAT WANT RESPONSE: the HTTP status of an API answer.
status() {
  python3 -c 'import json, sys; sys.exit(0 if json.loads(sys.argv[1]).get("statusCode") == int(sys.argv[2]) else 1)' "$3" "$2" \
    || die "$1: want $2, got $3 (log: $(tail -5 "$work/api.log"))"
  log "ok: $1: $2"
}

start_as_sam_local ApiFunction api
status "GET /healthz (database URL from the hook's secret)" 200 "$(invoke localstack/events/healthz.json)"
status "GET /accounts with the mock provider's token" 200 "$(invoke "$(api_event /accounts limit=2 "$(token fin)")")"
status "GET /accounts without a token" 401 "$(invoke "$(api_event /accounts limit=2)")"
status "GET /accounts with another issuer's token" 401 "$(invoke "$(api_event /accounts limit=2 "$(token other)")")"

start_as_sam_local CdcLandingSelfManagedFunction cdc-landing
got=$(invoke localstack/events/kafka-customers.json)
python3 -c 'import json, sys; r = json.loads(sys.argv[1]); sys.exit(1 if r is None or r.get("batchItemFailures") or "errorMessage" in r else 0)' "$got" \
  || die "the landing did not take localstack/events/kafka-customers.json ($got; log: $(tail -5 "$work/cdc-landing.log"))"
on_moto <<'PY' || die "the landing answered, but its object is not in the hook's bucket"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="eu-west-1")
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="fin-bronze-dev-000000000000").get("Contents", [])]
print("landed:", keys)
sys.exit(0 if any(k.startswith("bronze/customers/") and k.endswith(".parquet") for k in keys) else 1)
PY
log "sam local settings and the LocalStack hook hold"
