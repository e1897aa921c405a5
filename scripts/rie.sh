#!/usr/bin/env bash
# Installs aws-lambda-rie (the Lambda Runtime Interface Emulator) once into the project's cache
# and prints its path. Idempotent: used by the runtime contract test and the API benchmark.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# The emulator has no tagged releases that go install can use: a pseudo-version (dependencies.md).
version=v0.0.0-20261030222936-bef5c4ba774d
bin="${XDG_CACHE_HOME:-$HOME/.cache}/fin-orchestrator/bin"
stamp="$bin/aws-lambda-rie.version"
if [ ! -x "$bin/aws-lambda-rie" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$version" ]; then
  log "installing aws-lambda-rie $version (about a minute, once)"
  GOBIN="$bin" go install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$version" \
    || die "go install aws-lambda-rie@$version failed"
  echo "$version" >"$stamp"
fi
echo "$bin/aws-lambda-rie"
