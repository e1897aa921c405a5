#!/usr/bin/env bash
# Known vulnerabilities in the code we ship: govulncheck against a pinned vulnerability database.
set -euo pipefail
exec bash "$(dirname "$0")/../govulncheck.sh"
