#!/usr/bin/env bash
# govulncheck over every package, against the Go vulnerability database.
#
# These machines cannot reach vuln.go.dev, so by default the database is a pinned snapshot of
# golang.org/x/vulndb taken from the Go module proxy (its data/osv folder of OSV entries, which
# govulncheck reads as a local database). Bump VULNDB_VERSION to take newer advisories
# (`go list -m golang.org/x/vulndb@latest`). FIN_VULNDB=https://vuln.go.dev uses the live database
# (ci.yml does on GitHub).
#
# Fails on every vulnerability our code reaches, except those listed in
# scripts/govulncheck-accepted.txt (an id and why it cannot be fixed yet); an accepted id that no
# longer shows up fails too, so the list never outlives its reason.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$FIN_ROOT"

GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

# govulncheck type-checks the standard library of the toolchain it runs with, so it is built by
# that toolchain (GOTOOLCHAIN from lib.sh) into a folder named for both.
bin=${XDG_CACHE_HOME:-$HOME/.cache}/fin-orchestrator/govulncheck-$GOVULNCHECK_VERSION-$GOTOOLCHAIN
if [ ! -x "$bin/govulncheck" ]; then
  log "go install govulncheck $GOVULNCHECK_VERSION ($GOTOOLCHAIN)"
  (cd / && GOBIN="$bin" GOFLAGS=-mod=mod go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION") \
    || die "go install govulncheck $GOVULNCHECK_VERSION failed"
fi

db=${FIN_VULNDB:-}
if [ -z "$db" ]; then
  dir=$( (cd / && GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION") \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir/data/osv" ] || die "golang.org/x/vulndb@$VULNDB_VERSION has no data/osv folder (from the Go module proxy)"
  db=file://$dir/data/osv
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
log "govulncheck ./... (database $db, $(go env GOVERSION))"
rc=0
"$bin/govulncheck" -db "$db" -format json ./... >"$out" || rc=$?
[ "$rc" = 0 ] || die "govulncheck could not run (exit $rc): $(tail -c 2000 "$out")"

python3 - "$out" scripts/govulncheck-accepted.txt <<'PY'
import json, sys

def stream(path):
    # govulncheck -format json writes a stream of JSON objects, not one array.
    text, dec, i = open(path).read(), json.JSONDecoder(), 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return
        obj, i = dec.raw_decode(text, i)
        yield obj

accepted = {}
for line in open(sys.argv[2]):
    line = line.split("#", 1)[0].strip()
    if line:
        vid, _, why = line.partition(" ")
        accepted[vid] = why.strip()

summaries, reached = {}, {}
for msg in stream(sys.argv[1]):
    if "osv" in msg:
        summaries[msg["osv"]["id"]] = msg["osv"].get("summary", "")
    f = msg.get("finding")
    # A finding at symbol level (its trace's first frame, the vulnerable symbol, names a function)
    # is one our code reaches; module- and package-level findings are code we never call.
    if f and f.get("trace") and f["trace"][0].get("function"):
        fr = f["trace"][0]
        reached.setdefault(f["osv"], (fr.get("module", ""), fr.get("version", ""), f.get("fixed_version", "none")))

bad = False
for vid, (mod, ver, fixed) in sorted(reached.items()):
    state = "accepted: " + accepted[vid] if vid in accepted else "NOT ACCEPTED"
    print(f"{vid} {mod}@{ver} (fixed in {fixed}): {summaries.get(vid, '')} [{state}]")
    bad |= vid not in accepted
for vid in sorted(set(accepted) - set(reached)):
    print(f"{vid} is accepted in {sys.argv[2]} but no longer found: remove it")
    bad = True
if bad:
    sys.exit("govulncheck: vulnerabilities reached by our code (above); upgrade the module or the toolchain")
print(f"govulncheck: clean apart from {len(accepted)} accepted finding(s)")
PY
