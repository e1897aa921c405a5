#!/usr/bin/env bash
# Installs Debian's Chromium (for page tests) when it is absent, and prints its path. Idempotent.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

if ! command -v chromium >/dev/null; then
  log "installing chromium from Debian (a few minutes, once)"
  apt_install chromium fonts-dejavu-core
fi
command -v chromium >/dev/null || die "chromium was installed but is not on PATH"
command -v chromium
