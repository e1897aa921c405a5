#!/usr/bin/env bash
# Creates .venv with the pinned Python tools of requirements.txt (dbt and friends). Idempotent: a
# stamp of the requirements' hash skips pip when nothing changed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

venv="$FIN_ROOT/.venv"
req="$FIN_ROOT/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)

command -v python3 >/dev/null || die "python3 is not installed"
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; } \
    || die "could not create a Python virtual environment in $venv"
fi
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "$venv is current"
  exit 0
fi
log "installing requirements.txt into $venv (a few minutes the first time)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" \
  || die "pip could not install requirements.txt into $venv"
echo "$want" >"$stamp"
log "ready: $("$venv/bin/dbt" --version 2>/dev/null | grep -m1 -i 'installed' || echo dbt installed)"
