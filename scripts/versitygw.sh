#!/usr/bin/env bash
# versitygw, the real S3 server of the local stack (Apache-2.0, with event notifications).
#
#   bash scripts/versitygw.sh install   go-install versitygw v1.8.0 into the cache (idempotent)
#   bash scripts/versitygw.sh path      print the binary's path
#   bash scripts/versitygw.sh [run]     install, then run it in the foreground. Start the
#                                       webhook receiver first: versitygw sends it a test
#                                       event at start and exits if nobody answers.
#
# Settings (environment):
#   FIN_VGW_ADDR      listen address                      (default 127.0.0.1:7070)
#   FIN_VGW_DIR       its state: buckets as directories under data/, metadata under meta/
#                     (default .fin/versitygw)
#   FIN_VGW_WEBHOOK   where ObjectCreated notifications are posted
#                     (default http://fin:$FIN_S3_WEBHOOK_TOKEN@127.0.0.1:9001/s3-events: versitygw
#                     cannot send headers, but Go's client sends user info as Basic auth)
#   FIN_S3_ACCESS_KEY, FIN_S3_SECRET_KEY, FIN_S3_WEBHOOK_TOKEN
#                     generated once into .fin/s3.env when not set
# Point the stack at it with S3_ENDPOINT=http://$FIN_VGW_ADDR.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

VGW_VERSION=v1.8.0
VGW_BIN_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/fin-orchestrator/versitygw-$VGW_VERSION
VGW=$VGW_BIN_DIR/versitygw

install_versitygw() {
  if [ -x "$VGW" ]; then
    return
  fi
  command -v go >/dev/null || die "go is needed to install versitygw"
  log "go install versitygw $VGW_VERSION (a few minutes, once)"
  mkdir -p "$VGW_BIN_DIR"
  # Outside the repo, so the project's go.mod does not pin versitygw's dependencies.
  (cd / && GOBIN="$VGW_BIN_DIR" GOFLAGS=-buildvcs=false \
    go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION") \
    || die "go install versitygw $VGW_VERSION failed"
}

# load_credentials makes the local S3 credentials: from the environment, else from .fin/s3.env,
# else new random ones written there (mode 600; the repo never holds them).
load_credentials() {
  local env_file=$FIN_STATE_DIR/s3.env
  if [ -z "${FIN_S3_ACCESS_KEY:-}" ] && [ -f "$env_file" ]; then
    # shellcheck disable=SC1090
    . "$env_file"
  fi
  if [ -z "${FIN_S3_ACCESS_KEY:-}" ]; then
    mkdir -p "$FIN_STATE_DIR"
    umask 077
    {
      echo "FIN_S3_ACCESS_KEY=fin$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      echo "FIN_S3_SECRET_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      echo "FIN_S3_WEBHOOK_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } >"$env_file"
    log "new local S3 credentials in $env_file"
    # shellcheck disable=SC1090
    . "$env_file"
  fi
  export FIN_S3_ACCESS_KEY FIN_S3_SECRET_KEY FIN_S3_WEBHOOK_TOKEN
}

run_versitygw() {
  install_versitygw
  load_credentials
  local addr=${FIN_VGW_ADDR:-127.0.0.1:7070}
  local dir=${FIN_VGW_DIR:-$FIN_STATE_DIR/versitygw}
  local hook=${FIN_VGW_WEBHOOK:-http://fin:${FIN_S3_WEBHOOK_TOKEN:-}@127.0.0.1:9001/s3-events}
  mkdir -p "$dir/data" "$dir/meta"
  log "versitygw on http://$addr, buckets under $dir/data, notifications to ${hook#*@}"
  # Credentials through the environment, not the command line (ps shows that to every user).
  # The sidecar folder keeps metadata in files, so the file system needs no extended attributes.
  # versitygw prints the webhook URL at start: its user info (the token) is masked on the way out.
  ROOT_ACCESS_KEY_ID=$FIN_S3_ACCESS_KEY ROOT_SECRET_ACCESS_KEY=$FIN_S3_SECRET_KEY \
    VGW_EVENT_WEBHOOK_URL=$hook \
    "$VGW" --port "$addr" --quiet posix --sidecar "$dir/meta" "$dir/data" 2>&1 \
    | sed -u 's#://\([^:/@]*\):[^@/]*@#://\1:***@#g'
}

case "${1:-run}" in
  install) install_versitygw ;;
  path) echo "$VGW" ;;
  run) run_versitygw ;;
  *) die "usage: $0 [install|run]" ;;
esac
