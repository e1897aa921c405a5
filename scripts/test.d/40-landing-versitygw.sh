#!/usr/bin/env bash
# The landing function against a real S3 server: versitygw (installed once by
# scripts/versitygw.sh, ~2-3 minutes, then cached) with webhook notifications. The Go test
# (shared/landing TestLandingOnRealS3) starts versitygw itself on an ephemeral loopback port,
# after its webhook receiver, with throw-away credentials and data, and stops it at the end.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/versitygw.sh install
vgw=$(bash scripts/versitygw.sh path)

log "landing against versitygw"
FIN_TEST_VERSITYGW=$vgw go test -count=1 -run '^TestLandingOnRealS3$' -v ./shared/landing/ \
  || die "landing against versitygw failed"
