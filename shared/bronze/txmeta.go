package bronze

// TransactionMetadataTable is the bronze (and RAW) table of Debezium's transaction metadata: the
// BEGIN and END records of <prefix>.transaction_metadata (topic.transaction in the connector's
// configuration, docs/capture.md), one row each. The landing keeps them as rows of the same
// columns as change events: Op BEGIN or END, TxID and LSN from the record's id
// ("<txId>:<lsn>"), CommitTsUs its ts_ms (the commit time), After the record itself (with END's
// event_count and data_collections, the per-table event counts that tell a consumer it holds
// the whole transaction).
const TransactionMetadataTable = "transaction_metadata"
