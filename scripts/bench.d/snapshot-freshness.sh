#!/usr/bin/env bash
# Freshness during an online snapshot (issue 14), on the stack freshness.sh starts (`fin up
# --no-generate`, ephemeral ports, a throwaway database): `finbench snapshot-freshness` grows
# accounts by FIN_BENCH_ROWS rows (default 200,000), then commits 500 postings/s for BENCH_SECONDS
# (default 60) twice: streaming only (the reference), then while an online incremental snapshot
# of accounts runs (requested as `fin snapshot` does). It prints commit -> queryable in
# raw.transactions for each, and for the postings committed while the snapshot ran beside the
# target (p95 <= 2 s at 500 tx/s) and the reference, and for each where the time went (capture,
# the Kafka batch, the landing and the loader's queue, the load; docs/capture.md). Arguments go to finbench snapshot-freshness
# (e.g. --rate 50 --rows 20000 --accounts 20 --conns 4 with BENCH_SECONDS=5 for a quick look).
set -euo pipefail
FIN_FRESHNESS_BENCH=snapshot-freshness BENCH_SECONDS=${BENCH_SECONDS:-60} \
  exec bash "$(dirname "$0")/freshness.sh" --rows "${FIN_BENCH_ROWS:-200000}" "$@"
