#!/usr/bin/env bash
# The console's runs views on a running stack: a dbt build is kept with its nodes and its part of
# dbt's console log; every load and landing batch with its offsets, paged by key; the page draws
# them (headless Chromium); and after a kill -9 and a restart, the same runs and every load of the
# ledger are there. Refused without the console token.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

go build -o bin/fin ./cmd/fin
throwaway_stack cruns
up_pid=""
cleanup() {
  status=$?
  stack_down KILL
  if [ "$status" != 0 ]; then
    mkdir -p "$FIN_ROOT/.fin/test-artifacts/console-runs"
    cp -r "$work"/*.out "$work"/*.html "$FIN_STATE_DIR/logs" "$FIN_ROOT/.fin/test-artifacts/console-runs/" 2>/dev/null || true
    log "logs kept in .fin/test-artifacts/console-runs"
  fi
  drop_throwaway
  rm -rf "$work"
}
trap cleanup EXIT
drop_throwaway
psql -X -q "$admin" -c "CREATE DATABASE $db" >/dev/null
mkdir -p "$FIN_STATE_DIR"
cat >"$work/config.yaml" <<YAML
seed: 64
customers: 60
accounts: 90
transactions: 400
continuous:
  rate: 5
YAML
bin/fin generate --once --config "$work/config.yaml" >/dev/null
stack_up "$work/up.out" --config "$work/config.yaml"
token=$(cat "$FIN_STATE_DIR/sql.token")
get() { curl -fsS -H "Authorization: Bearer $token" "http://$CONSOLE_ADDR$1"; }

for path in /api/runs /api/runs/1 /api/loads /api/batches /api/dlq /api/charts /runs.js; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$CONSOLE_ADDR$path")
  [ "$code" = 401 ] || die "$path without the console token answered $code, want 401"
done

log "a dbt build is kept with its nodes and its log"
passed_one() {
  first=$(get "/api/runs?limit=1" | python3 -c "import json,sys; i=json.load(sys.stdin)['items']; print(i[0]['id'] if i and i[0]['ok'] else '')")
  [ -n "$first" ]
}
wait_for "a dbt build that passed" 180 900 passed_one dbt_progress
get "/api/runs/$first" >"$work/run.json"
python3 - "$work/run.json" <<'PY' || die "run $first lacks its detail: $(head -c 600 "$work/run.json")"
import json, sys
r = json.load(open(sys.argv[1]))
d = r["detail"]
kinds = {n["kind"] for n in d["nodes"]}
assert r["trigger"] in ("schedule", "loads") and r["started"] < r["ended"], (r["trigger"], r["started"], r["ended"])
assert {"model", "test"} <= kinds, kinds
assert all(n["status"] in ("success", "pass", "warn", "skipped", "no-op") for n in d["nodes"]), "a passing run with a failed node"
assert "Completed successfully" in d["log"], "the run's log is not dbt's output of that build"
assert d["log"].count("Running with dbt=") == 1, "the log holds more than one build"
PY

log "loads and landing batches, paged by key"
python3 - "http://$CONSOLE_ADDR" "$token" >"$work/walk.out" <<'PY' || die "paging: $(cat "$work/walk.out")"
import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    return json.load(urllib.request.urlopen(req))
def walk(kind):
    items, cursor = [], ""
    while True:
        page = get(f"/api/{kind}?limit=7" + (f"&before={cursor}" if cursor else ""))
        items += page["items"]
        if "next" not in page:
            return items
        cursor = page["next"]
loads, batches = walk("loads"), walk("batches")
for kind, items in (("loads", loads), ("batches", batches)):
    ids = [int(i["id"]) for i in items]
    assert ids and ids == sorted(set(ids), reverse=True), f"{kind}: ids {ids[:20]} not each once, newest first"
for l in loads:
    assert l["key"].startswith("bronze/") and l["first_offset"] <= l["last_offset"] and l["topic"], l
objects = {b["object"] for b in batches}
missing = [l["key"] for l in loads if l["key"] not in objects]
assert not missing, f"loaded objects no landing batch wrote: {missing[:3]}"
print(len(loads), len(batches))
PY
read -r loads batches <"$work/walk.out"
log "$loads loads, $batches landing batches"

log "the views in the page (headless Chromium)"
chromium=$(bash scripts/chromium.sh | tail -n 1)
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --disable-dev-shm-usage --user-data-dir="$work/chrome" --window-size=1400,3000 \
  --lang=en-US --virtual-time-budget=8000 --dump-dom "http://$CONSOLE_ADDR/?token=$token" >"$work/console.html" 2>>"$work/chromium.out" \
  || die "chromium failed: $(tail -5 "$work/chromium.out")"
python3 - "$work/console.html" <<'PY' || die "the page does not draw the runs views (DOM kept)"
import re, sys
html = open(sys.argv[1]).read()
for view in ("runs", "loads", "batches"):
    m = re.search(rf'id="view-{view}".*?</section>', html, re.S)
    assert m and '<tr data-key="' in m.group(0), f"view-{view} has no rows"
m = re.search(r'id="view-charts".*?</section>', html, re.S)
assert m and 'class="series"' in m.group(0), "the charts draw no series"
PY

log "kill -9 and restart: the same runs, and every load of the ledger"
before=$(get "/api/runs?limit=500" | python3 -c "import json,sys; print(' '.join(i['id'] for i in json.load(sys.stdin)['items']))")
stack_down KILL
# The killed stack's dbt worker dies with it, but may take a moment to let go of the warehouse.
held() { for fd in /proc/[0-9]*/fd/*; do [ "$(readlink "$fd" 2>/dev/null)" = "$WAREHOUSE_PATH" ] && return 0; done; return 1; }
for _ in $(seq 1 60); do held || break; sleep 1; done
held && die "the killed stack's processes still hold $WAREHOUSE_PATH after 60 s"
stack_up "$work/up2.out" --no-generate --config "$work/config.yaml"
after=$(get "/api/runs?limit=500" | python3 -c "import json,sys; print(' '.join(i['id'] for i in json.load(sys.stdin)['items']))")
python3 - "$before" "$after" <<'PY' || die "runs before the restart ($before) are not all there after it ($after)"
import sys
before, after = sys.argv[1].split(), sys.argv[2].split()
assert before and set(before) <= set(after), (before, after)
PY
get "/api/runs/$first" | python3 -c "import json,sys; assert 'Completed successfully' in json.load(sys.stdin)['detail']['log']" \
  || die "run $first lost its log in the restart"
# What the kill took from the recorder's queue comes back from the ledger, in the background.
bin/fin sql "select object_key from raw._load_ledger" | tail -n +2 | sort >"$work/ledger.keys"
for _ in $(seq 1 30); do
  python3 - "http://$CONSOLE_ADDR" "$token" <<'PY' | sort -u >"$work/view.keys"
import json, sys, urllib.request
base, token, cursor = sys.argv[1], sys.argv[2], ""
while True:
    req = urllib.request.Request(base + "/api/loads?limit=500" + (f"&before={cursor}" if cursor else ""), headers={"Authorization": "Bearer " + token})
    page = json.load(urllib.request.urlopen(req))
    for i in page["items"]:
        print(i["key"])
    if "next" not in page:
        break
    cursor = page["next"]
PY
  missing=$(comm -23 "$work/ledger.keys" "$work/view.keys" | wc -l)
  [ "$missing" = 0 ] && break
  sleep 1
done
[ "$missing" = 0 ] || die "$missing loads of the ledger are not in the loads view after the restart: $(comm -23 "$work/ledger.keys" "$work/view.keys" | head -3)"
[ "$(wc -l <"$work/view.keys")" -ge "$loads" ] || die "$(wc -l <"$work/view.keys") loads after the restart, $loads before"
status_runs=$(get /api/status | python3 -c "import json,sys; print(len(json.load(sys.stdin)['dbt_runs'] or []))")
[ "$status_runs" -gt 0 ] || die "the status shows no dbt run after the restart"
log "console runs passed"
