-- The Go capture records here that the initial snapshot of a replication slot reached Kafka
-- completely. A slot without a row was left by a capture that died mid-snapshot: the next start
-- drops it and snapshots again, instead of streaming from a slot whose snapshot is incomplete.
CREATE TABLE capture_snapshots (
    slot_name        text PRIMARY KEY,
    consistent_point pg_lsn NOT NULL,
    completed_at     timestamptz NOT NULL DEFAULT now()
);
