#!/usr/bin/env bash
# Lints what Go tests cannot see: the workflows (actionlint), every shell script (shellcheck),
# docker-compose.yml (docker-compose config), and template.yaml (cfn-lint, sam validate --lint, and
# the SAM transform followed by cfn-lint, which must refuse every template of fixtures/aws-rejects),
# and dbt's test materializations against the ones the project's override was written against.
# Installs its tools idempotently: shellcheck and docker-compose from Debian, actionlint with
# `go install`, SAM CLI and cfn-lint into .venv-sam, dbt into .venv.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

need=()
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v docker-compose >/dev/null || need+=(docker-compose)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

gobin=$(go env GOPATH)/bin
if [ ! -x "$gobin/actionlint" ] || ! "$gobin/actionlint" -version | grep -q 1.7.12; then
  log "go install actionlint v1.7.12"
  go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
fi
bash scripts/venv.sh sam

log "shellcheck"
shellcheck -x scripts/*.sh scripts/test.d/*.sh scripts/bench.d/*.sh localstack/ready.d/*.sh .ci/run
log "actionlint"
"$gobin/actionlint"
log "docker-compose config"
# The check needs the variables .env would hold; .env.example has placeholders for each.
(set -a; . ./.env.example; set +a; docker-compose -f docker-compose.yml config -q)
log "cfn-lint and sam validate --lint (SAM's schemas, no transform)"
.venv-sam/bin/cfn-lint template.yaml
SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam validate --lint >/dev/null
# cfn-lint no longer runs the SAM transform, and `sam validate --lint` only runs cfn-lint: both
# passed a Kafka event with three topics. samlint.py runs the transform (sam validate's own
# translator), proves it ran, and lints the CloudFormation it makes.
log "SAM transform, then cfn-lint on its CloudFormation"
.venv-sam/bin/python scripts/samlint.py template.yaml
log "templates AWS rejects (fixtures/aws-rejects) fail it, each for the reason its '# lint:' line says"
.venv-sam/bin/python scripts/samlint.py --refused fixtures/aws-rejects/*.yaml \
  || die "a template of fixtures/aws-rejects passed the lint, or failed it for another reason (above)"
# fin up holds the same templates to AWS's rules (TestTemplatesAWSRejectsStopFinUp); the rules
# are extracted from the pinned botocore and cfn-lint, and must match them.
log "shared/awsrules/constraints.json against the pinned botocore and cfn-lint"
.venv-sam/bin/python scripts/awsrules.py --check
# dbt/macros/checks.sql overrides dbt's test materialization for column_checks, views.sql its view
# materialization on DuckDB; a dbt upgrade that changes dbt's (or dbt-snowflake's) must fail
# here, naming what to re-check.
log "dbt's test and view materializations are those dbt/macros/checks.sql's and views.sql's overrides were written against"
bash scripts/venv.sh
.venv/bin/python scripts/dbt/materialization.py --check
changed=$(mktemp "${TMPDIR:-/tmp}/fin-checks.XXXXXX")
trap 'rm -f "$changed"' EXIT
sed -E "s/^(    upstream .*) [0-9a-f]{64}$/\1 $(printf '%064d' 0)/" dbt/macros/checks.sql >"$changed"
if out=$(.venv/bin/python scripts/dbt/materialization.py --check "$changed" 2>&1); then
  die "materialization.py --check passed an override recorded against other test materializations"
fi
for want in "changed from" "Re-check the override"; do
  grep -q "$want" <<<"$out" || die "materialization.py --check failed without '$want': $out"
done
log "lint passed"
