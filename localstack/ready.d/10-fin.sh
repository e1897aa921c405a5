#!/usr/bin/env bash
# LocalStack ready hook: the bucket, queues and secrets template.yaml expects, with its settings,
# so that the functions under `sam local` (localstack/sam-env.json) find them as in AWS.
# Idempotent: a rerun changes nothing but a database secret whose URL changed. Tested against
# Moto's server by scripts/test.d/45-sam-local.sh.
#
# Environment: STAGE (dev), AWS_DEFAULT_REGION (eu-west-1), FIN_DATABASE_URL (the compose
# Postgres, docker-compose.yml builds it from POSTGRES_PASSWORD). awslocal is LocalStack's own
# aws CLI wrapper (LOCALSTACK_HOST points it elsewhere).
set -euo pipefail

stage=${STAGE:-dev}
region=${AWS_DEFAULT_REGION:-eu-west-1}
account=$(awslocal sts get-caller-identity --query Account --output text)
bucket="fin-bronze-$stage-$account"
queue="fin-failed-invocations-$stage"

# The bronze bucket as template.yaml's BronzeBucket: versioned, no public access, old versions
# expire after 30 days. (Its KMS default encryption is left out: LocalStack runs no KMS here.)
if ! awslocal s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
  if [ "$region" = us-east-1 ]; then # the one region S3 refuses as a LocationConstraint
    awslocal s3api create-bucket --bucket "$bucket" >/dev/null
  else
    awslocal s3api create-bucket --bucket "$bucket" --create-bucket-configuration "LocationConstraint=$region" >/dev/null
  fi
fi
awslocal s3api put-bucket-versioning --bucket "$bucket" --versioning-configuration Status=Enabled
awslocal s3api put-public-access-block --bucket "$bucket" --public-access-block-configuration \
  BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
awslocal s3api put-bucket-lifecycle-configuration --bucket "$bucket" --lifecycle-configuration \
  '{"Rules": [{"ID": "expire-old-versions", "Status": "Enabled", "Filter": {}, "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}]}'

# FailedInvocations: 14 days' retention, SQS-managed encryption, as in the template.
queue_url=$(awslocal sqs create-queue --queue-name "$queue" \
  --attributes MessageRetentionPeriod=1209600,SqsManagedSseEnabled=true --query QueueUrl --output text)
echo "failed-invocations queue: $queue_url"

# The loader's trigger: ObjectCreated under bronze/ with a .parquet suffix, as in template.yaml.
# Delivered to an SQS queue here (sam local has no S3 event source: `sam local invoke` takes the
# event, and the fin runtime's listing catch-up covers the rest).
events_queue_url=$(awslocal sqs create-queue --queue-name "fin-bronze-events-$stage" --query QueueUrl --output text)
events_queue_arn=$(awslocal sqs get-queue-attributes --queue-url "$events_queue_url" --attribute-names QueueArn --query Attributes.QueueArn --output text)
awslocal s3api put-bucket-notification-configuration --bucket "$bucket" --notification-configuration "{
  \"QueueConfigurations\": [{
    \"Id\": \"BronzeObject\",
    \"QueueArn\": \"$events_queue_arn\",
    \"Events\": [\"s3:ObjectCreated:*\"],
    \"Filter\": {\"Key\": {\"FilterRules\": [{\"Name\": \"prefix\", \"Value\": \"bronze/\"}, {\"Name\": \"suffix\", \"Value\": \".parquet\"}]}}
  }]
}"

# put_secret NAME VALUE: creates the secret, or gives it VALUE when it holds another.
put_secret() {
  if ! awslocal secretsmanager describe-secret --secret-id "$1" >/dev/null 2>&1; then
    awslocal secretsmanager create-secret --name "$1" --secret-string "$2" >/dev/null
  elif [ "$(awslocal secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text)" != "$2" ]; then
    awslocal secretsmanager put-secret-value --secret-id "$1" --secret-string "$2" >/dev/null
  fi
}
placeholder='{"note":"a local placeholder: set the real value with put-secret-value"}'

# The functions read these by ARN in AWS, by name here (sam-env.json). The database secret holds
# the compose Postgres's URL under "url", as awssecrets.DatabaseURL reads it.
if [ -n "${FIN_DATABASE_URL:-}" ]; then
  put_secret "fin/$stage/database" "$(python3 -c 'import json, sys; print(json.dumps({"url": sys.argv[1]}))' "$FIN_DATABASE_URL")"
elif ! awslocal secretsmanager describe-secret --secret-id "fin/$stage/database" >/dev/null 2>&1; then
  put_secret "fin/$stage/database" "$placeholder"
fi
# No Snowflake runs in compose: a placeholder, never overwritten, for your own account's values
# ({"account", "user", "private_key"}; docs/loader.md).
awslocal secretsmanager describe-secret --secret-id "fin/$stage/snowflake" >/dev/null 2>&1 \
  || put_secret "fin/$stage/snowflake" "$placeholder"
echo "localstack ready: s3://$bucket, queues $queue and fin-bronze-events-$stage, secrets fin/$stage/*"
