#!/usr/bin/env bash
# Online incremental snapshot benchmarks (issue 14), each beside its reference from the same run:
#  - a 1,000,000-row table snapshotted by the Go capture while inserts stream, beside
#    COPY (SELECT ...) TO STDOUT of the same table (target >= 0.5x), and the same COPY in key
#    order (the chunks' order: what Postgres alone needs, a bound for the snapshot); once on a table
#    whose keys are the column default the application uses (uuidv7()), once on one with random
#    keys (gen_random_uuid(), tables written before the ids became time-ordered);
#  - the capture's peak RSS while snapshotting a 10,000,000-row table, beside its peak over 20 s
#    while only streaming (budget 200 MB), and how long that took (the table is filled with
#    INSERT ... SELECT generate_series while out of the publication, so it is not streamed first).
#  - the capture's CPU during the snapshot (less swayed by the machine's load than the wall time).
# FIN_BENCH_ROWS and FIN_BENCH_RSS_ROWS scale the tables down for a quick look;
# FIN_BENCH_SNAPSHOT_10M=0 skips the 10,000,000-row RSS run (11 minutes here, 15 with the rest;
# the issue allows 20).
# The commit-to-RAW freshness during a snapshot is snapshot-freshness.sh's.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$FIN_ROOT"

bash scripts/postgres.sh
go build -o bin/ ./cmd/fin ./cmd/finbench # finbench snapshot measures bin/fin capture
rss_rows=${FIN_BENCH_RSS_ROWS:-10000000}
if [ "${FIN_BENCH_SNAPSHOT_10M:-1}" = 0 ]; then rss_rows=0; fi
LOG_LEVEL=WARN bin/finbench snapshot --rows "${FIN_BENCH_ROWS:-1000000}" --rss-rows "$rss_rows"
