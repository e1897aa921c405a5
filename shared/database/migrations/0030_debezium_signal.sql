-- Debezium's signal table (signal.data.collection=public.debezium_signal), in the layout its
-- documentation gives. A row of type execute-snapshot with data
-- {"data-collections": ["public.accounts"], "type": "incremental"} asks Debezium on MSK Connect and
-- the Go capture alike for an online incremental snapshot; both also write their snapshot-window
-- watermarks here. It must be in the publication: the signals and watermarks reach the captures
-- through the replication slot (pgoutput sends only published tables).
CREATE TABLE debezium_signal (
    id   varchar(42) PRIMARY KEY,
    type varchar(32) NOT NULL,
    data varchar(2048)
);
ALTER PUBLICATION fin_cdc ADD TABLE debezium_signal;
