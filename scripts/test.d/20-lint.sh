#!/usr/bin/env bash
# Lints what Go tests cannot see: the workflows (actionlint), every shell script (shellcheck),
# docker-compose.yml (docker-compose config), and template.yaml (cfn-lint, sam validate --lint).
# Installs its tools idempotently: shellcheck and docker-compose from Debian, actionlint with
# `go install`, SAM CLI and cfn-lint into .venv-sam.
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
log "cfn-lint and sam validate --lint"
.venv-sam/bin/cfn-lint template.yaml
SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam validate --lint >/dev/null
log "lint passed"
