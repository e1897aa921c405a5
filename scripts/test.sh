#!/usr/bin/env bash
# make test: starts what the tests need, then runs every test the project has: the Go tests
# (unit and against the real Postgres), then each scripts/test.d/*.sh (integration suites that
# bring up further real parts). Stops at the first failing suite.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$FIN_ROOT"
mkdir -p "$FIN_STATE_DIR"

bash scripts/postgres.sh
bash scripts/venv.sh

log "go vet"
go vet ./...
mapfile -t gofiles < <(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.venv*')
unformatted=$(gofmt -l "${gofiles[@]}")
[ -z "$unformatted" ] || die "gofmt would change: $unformatted"
# A test that names a fixture's bronze key by hand from the clock names another object on any
# other day than the fixture's: tests build keys through bronzetest (Key, KeyAt).
mapfile -t testfiles < <(git ls-files '*_test.go')
clockkeys=$(grep -n 'bronze\.ObjectKey(' "${testfiles[@]}" || true)
[ -z "$clockkeys" ] || die "tests must build bronze keys with bronzetest.Key or KeyAt (fixture dates): $clockkeys"

log "go test"
FIN_REQUIRE_DBT=1 go test -count=1 -timeout 20m ./...

for suite in scripts/test.d/*.sh; do
  [ -e "$suite" ] || continue
  log "suite $suite"
  bash "$suite"
done
log "all tests passed"
