#!/usr/bin/env bash
# LocalStack ready hook: the buckets, queues and secrets template.yaml expects, so the functions
# can be exercised against LocalStack the way they run in AWS. Idempotent.
set -euo pipefail

stage=${STAGE:-dev}
region=${AWS_DEFAULT_REGION:-eu-west-1}
account=000000000000
bucket="fin-bronze-$stage-$account"
queue="fin-failed-invocations-$stage"

awslocal s3api head-bucket --bucket "$bucket" 2>/dev/null \
  || awslocal s3api create-bucket --bucket "$bucket" --create-bucket-configuration "LocationConstraint=$region"
awslocal s3api put-bucket-versioning --bucket "$bucket" --versioning-configuration Status=Enabled

queue_url=$(awslocal sqs create-queue --queue-name "$queue" --query QueueUrl --output text)
echo "failed-invocations queue: $queue_url"

# The loader's trigger: ObjectCreated under bronze/ with a .parquet suffix, as in template.yaml.
# LocalStack delivers it to an SQS queue here; the fin runtime's listing catch-up covers the rest.
events_queue_url=$(awslocal sqs create-queue --queue-name "fin-bronze-events-$stage" --query QueueUrl --output text)
events_queue_arn=$(awslocal sqs get-queue-attributes --queue-url "$events_queue_url" --attribute-names QueueArn --query Attributes.QueueArn --output text)
awslocal s3api put-bucket-notification-configuration --bucket "$bucket" --notification-configuration "{
  \"QueueConfigurations\": [{
    \"QueueArn\": \"$events_queue_arn\",
    \"Events\": [\"s3:ObjectCreated:*\"],
    \"Filter\": {\"Key\": {\"FilterRules\": [{\"Name\": \"prefix\", \"Value\": \"bronze/\"}, {\"Name\": \"suffix\", \"Value\": \".parquet\"}]}}
  }]
}"

# Secrets the functions read by ARN. Values are local placeholders, never real credentials.
for name in "fin/$stage/database" "fin/$stage/snowflake"; do
  awslocal secretsmanager describe-secret --secret-id "$name" >/dev/null 2>&1 \
    || awslocal secretsmanager create-secret --name "$name" --secret-string '{"note":"set the real value with put-secret-value"}' >/dev/null
done
echo "localstack ready: s3://$bucket, queues $queue and fin-bronze-events-$stage, secrets fin/$stage/*"
