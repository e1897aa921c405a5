#!/usr/bin/env bash
# The API's /docs page renders with the network off: headless Chromium (Debian's, installed by
# scripts/chromium.sh) loads it from a local `fin api` while every non-loopback host is unresolvable
# and every non-loopback request goes to a dead proxy. Checks: the rendered DOM lists the API's
# operations, the page's assets and spec were all served by the API itself, and the screenshot
# shows Swagger UI's coloured GET and POST badges (so the styles and the script really ran).
# The screenshot is kept in .fin/test-artifacts/api-docs.png.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/postgres.sh >/dev/null 2>&1 || die "Postgres did not start (run scripts/postgres.sh to see why)"
chromium=$(bash scripts/chromium.sh | tail -n 1)
export PGPASSFILE=$FIN_PGPASSFILE PGHOST=127.0.0.1 PGPORT=$FIN_PG_PORT PGUSER=fin

work=$(mktemp -d)
db="fin_test_docs_$$"
api_pid=""
cleanup() {
  [ -z "$api_pid" ] || { kill "$api_pid" 2>/dev/null; wait "$api_pid" 2>/dev/null || true; }
  "$FIN_PG_BIN/dropdb" --if-exists --force "$db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$FIN_PG_BIN/createdb" "$db"

go build -o bin/fin ./cmd/fin
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
FIN_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n') LOG_LEVEL=info \
  DATABASE_URL="postgres://fin@127.0.0.1:$FIN_PG_PORT/$db?sslmode=disable" \
  bin/fin api -addr "127.0.0.1:$port" 2>"$work/api.log" &
api_pid=$!
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$base/healthz" >/dev/null || die "fin api did not start: $(tail -5 "$work/api.log")"

offline_chromium() {
  "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --user-data-dir="$work/profile-$1" \
    --host-resolver-rules='MAP * ~NOTFOUND, EXCLUDE 127.0.0.1' --proxy-server='http://127.0.0.1:9' \
    --window-size=1280,1600 --virtual-time-budget=15000 "${@:2}" "$base/docs" 2>>"$work/chromium.log"
}
log "rendering $base/docs in headless Chromium with the network off"
offline_chromium dom --dump-dom >"$work/dom.html" || die "chromium failed: $(tail -5 "$work/chromium.log")"
offline_chromium shot --screenshot="$work/docs.png" >/dev/null || die "chromium screenshot failed: $(tail -5 "$work/chromium.log")"
mkdir -p "$FIN_STATE_DIR/test-artifacts"
cp "$work/docs.png" "$FIN_STATE_DIR/test-artifacts/api-docs.png"

for want in 'fin-orchestrator banking API' 'post-transaction' 'reverse-transaction' 'list-customers' '/accounts/{account_id}'; do
  grep -qF "$want" "$work/dom.html" || die "the rendered /docs page lacks \"$want\" (Swagger UI did not render the spec; DOM in $work/dom.html: $(head -c 300 "$work/dom.html"))"
done
served=$(grep -o '"route":"[^"]*","status":200' "$work/api.log" | sed 's/"route":"//; s/",.*//' | sort -u)
for route in /docs /docs/init.js /docs/swagger-ui-bundle.js /docs/swagger-ui.css /openapi.json; do
  grep -qxF "$route" <<<"$served" \
    || die "the page did not load $route from the API (routes served: $(tr '\n' ' ' <<<"$served"))"
done

# The screenshot must show Swagger UI's GET (#61affe) and POST (#49cc90) badge colours: only a page
# whose CSS and script both loaded draws them.
python3 scripts/pngcolors.py "$work/docs.png" 200 '#61affe' '#49cc90' \
  || die "the /docs screenshot does not show a rendered Swagger UI (kept in $FIN_STATE_DIR/test-artifacts/api-docs.png)"
log "/docs renders offline: operations listed, assets served by the API, badges drawn"
