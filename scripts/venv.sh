#!/usr/bin/env bash
# Creates a Python virtual environment with pinned tools. Idempotent: a stamp of the requirements'
# hash skips pip when nothing changed.
#   scripts/venv.sh       .venv      from requirements.txt      (dbt and friends)
#   scripts/venv.sh sam   .venv-sam  from requirements-sam.txt  (AWS SAM CLI, cfn-lint)
#   scripts/venv.sh moto  .venv-moto from requirements-moto.txt (Moto's server, aws CLI, awslocal)
#   scripts/venv.sh fuzz  .venv-fuzz from requirements-fuzz.txt (Schemathesis)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

case "${1:-}" in
  "") venv="$FIN_ROOT/.venv"; req="$FIN_ROOT/requirements.txt" ;;
  sam) venv="$FIN_ROOT/.venv-sam"; req="$FIN_ROOT/requirements-sam.txt" ;;
  moto) venv="$FIN_ROOT/.venv-moto"; req="$FIN_ROOT/requirements-moto.txt" ;;
  fuzz) venv="$FIN_ROOT/.venv-fuzz"; req="$FIN_ROOT/requirements-fuzz.txt" ;;
  *) die "unknown environment '$1' (known: sam, moto, fuzz)" ;;
esac
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
log "installing $(basename "$req") into $venv (a few minutes the first time)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" \
  || die "pip could not install $(basename "$req") into $venv"
echo "$want" >"$stamp"
log "ready: $venv"
