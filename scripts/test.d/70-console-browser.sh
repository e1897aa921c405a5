#!/usr/bin/env bash
# The console in a real browser: headless Chromium (Debian's, scripts/chromium.sh) drives the page
# of a throwaway `fin up` through the DevTools protocol (shared/cdp, on a pipe). It opens the
# one-time console link, checks each view renders, is refused an action without an operator's
# token, then types one in and clicks each action button (build now, replay the DLQ, re-snapshot)
# and waits for its effect: a new dbt run on the page, the DLQ empty again, a snapshot window of
# accounts in RAW. The test is TestConsoleInBrowser (shared/console/browser_test.go), its table of
# views one line per view; screenshots of each view are kept in .fin/test-artifacts/console/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

chromium=$(bash scripts/chromium.sh | tail -n 1)
go build -o bin/fin ./cmd/fin
throwaway_stack console
up_pid=""
artifacts=$FIN_ROOT/.fin/test-artifacts/console
cleanup() {
  status=$?
  stack_down KILL
  if [ "$status" != 0 ]; then
    cp -r "$work"/*.out "$FIN_STATE_DIR/logs" "$artifacts/" 2>/dev/null || true
  fi
  drop_throwaway
  rm -rf "$work"
}
trap cleanup EXIT
drop_throwaway
psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null
mkdir -p "$FIN_STATE_DIR"
rm -rf "$artifacts" && mkdir -p "$artifacts"

cat >"$work/config.yaml" <<YAML
seed: 2026
customers: 200
accounts: 300
transactions: 3000
continuous:
  rate: 10
YAML
bin/fin generate --once --config "$work/config.yaml" >/dev/null
stack_up "$work/up.out" --config "$work/config.yaml"
link=$(grep -o 'http://[^ ]*/?code=[0-9a-f]*' "$work/up.out" | head -1)
[ -n "$link" ] || die "fin up printed no console link: $(tail -20 "$work/up.out")"

log "driving the console in headless Chromium (screenshots in $artifacts)"
FIN_TEST_CONSOLE_LINK=$link FIN_TEST_CHROMIUM=$chromium FIN_TEST_ARTIFACTS=$artifacts \
  FIN_TEST_OPERATOR_TOKEN=$(bin/fin token --scopes bank:operator --subject console-browser-test --ttl 30m) \
  FIN_TEST_SQL_TOKEN=$(cat "$FIN_STATE_DIR/sql.token") \
  FIN_TEST_S3_URL=http://$S3_ADDR FIN_TEST_S3_CREDENTIALS=$FIN_STATE_DIR/s3-credentials \
  go test -count=1 -v -timeout 45m ./shared/console/ -run '^TestConsoleInBrowser$' 2>&1 | tee "$work/browser.out" | grep -E '^(=== RUN|--- |\s+browser_test|ok|FAIL|PASS)' || true
grep -q '^--- PASS: TestConsoleInBrowser' "$work/browser.out" \
  || die "the console failed in the browser (screenshots in $artifacts): $(grep -A3 -E 'browser_test.go|FAIL' "$work/browser.out" | tail -30)"
log "console views render and its actions work in Chromium; screenshots: $(printf '%s ' "$artifacts"/*.png)"
