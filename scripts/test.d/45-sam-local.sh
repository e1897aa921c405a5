#!/usr/bin/env bash
# sam local for people with Docker, as far as a machine without Docker goes (issue 13, item 8):
#   1. What `sam local` gives each function's container, worked out by the SAM CLI's own code from
#      samconfig.toml's [local] sections, localstack/sam-env.json and template.yaml, and checked
#      against docker-compose.yml (localstack/check_sam_local.py).
#   2. LocalStack's ready hook (localstack/ready.d/10-fin.sh) against Moto's server, which speaks
#      the same S3, SQS, STS and Secrets Manager APIs without Docker: run, then run again with
#      another database URL, and every resource must exist with template.yaml's settings, under
#      the names sam-env.json uses. awslocal (awscli-local) is pointed at Moto by LOCALSTACK_HOST.
# Not here: containers (no Docker engine), `sam build` (50-lambda-runtime.sh), the env-vars file
# against each function's settings (go test ./localstack/). About a minute.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/venv.sh sam
bash scripts/venv.sh moto

log "what sam local gives each function (SAM CLI's own resolution)"
SAM_CLI_TELEMETRY=0 AWS_ACCESS_KEY_ID=sam-local AWS_SECRET_ACCESS_KEY=sam-local \
  .venv-sam/bin/python localstack/check_sam_local.py || die "sam local would not give the functions their settings (above)"

work=$(mktemp -d "${TMPDIR:-/tmp}/fin-sam-local.XXXXXX")
moto_pid=""
cleanup() {
  [ -z "$moto_pid" ] || { kill "$moto_pid" 2>/dev/null; wait "$moto_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

# LocalStack's default account, which the names in sam-env.json carry.
port=$(free_port)
MOTO_ACCOUNT_ID=000000000000 .venv-moto/bin/moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
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
on_moto() { # runs the Python on stdin with boto3, Moto's port as its argument
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test .venv-moto/bin/python - "$port"
}
log "ready hook, first run"
hook 'postgres://fin:first@postgres:5432/fin?sslmode=disable'
# Someone puts their Snowflake values into the placeholder: a rerun must keep them.
on_moto <<'PY'
import boto3, sys
boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="eu-west-1").put_secret_value(
    SecretId="fin/dev/snowflake", SecretString='{"account": "mine"}')
PY
log "ready hook, second run (another database URL)"
hook 'postgres://fin:second@postgres:5432/fin?sslmode=disable'

log "the resources, against template.yaml and sam-env.json"
on_moto <<'PY' || die "the ready hook left LocalStack unlike what template.yaml and sam-env.json expect (above)"
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
        want(f"{name}", json.loads(value), {"url": "postgres://fin:second@postgres:5432/fin?sslmode=disable"})
    else:
        want(f"{name} (set by its owner, then the hook ran again)", json.loads(value), {"account": "mine"})

if problems:
    sys.exit("\n".join(problems))
print(f"s3://{bucket}, its notification to {events_arn}, the failed-invocations queue and {len(names)} secrets as expected")
PY
log "sam local settings and the LocalStack hook hold"
