// Package bronze is the contract of the lake's bronze layer, shared by the landing function that
// writes it and the warehouse loader that reads it.
//
// A bronze object is a Parquet file (zstd) holding the Debezium change events of one
// (topic, partition, offset range), one row per event, tombstones left out. Its key is derived
// from those, so a retried batch rewrites the same object:
//
//	bronze/<table>/dt=<YYYY-MM-DD>/<topic>-<partition>-<first offset>-<last offset>-<source>.parquet
//
// source (SourceID) names the Kafka cluster the batch came from, so a cluster whose offsets
// start again (a replaced cluster, or the local embedded broker, which keeps its log in memory)
// never overwrites objects of another with different events under the same offsets.
//
// dt is the UTC date of the first event's commit time (never the wall clock), so the key of a
// batch is the same on every retry. Records that cannot be decoded go to dlq/ instead (see DLQKey).
//
// Row images (before, after) are kept as the JSON objects Debezium wrote, money as decimal strings:
// a column added to a source table flows through without a code change, and the warehouse types
// them (dbt staging). The warehouse RAW table of a source table has these columns plus
// _object_key and _loaded_at.
package bronze

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Record is one row of a bronze object: one change event and where it came from.
type Record struct {
	Topic     string `parquet:"topic"`
	Partition int32  `parquet:"partition"`
	Offset    int64  `parquet:"offset"`
	// Key is the Kafka key as Debezium wrote it: the primary key columns as JSON.
	Key string `parquet:"key"`
	// Op is Debezium's operation: r (snapshot read), c, u or d.
	Op string `parquet:"op"`
	// LSN is source.lsn, the WAL position of the change; per key it orders versions.
	LSN *int64 `parquet:"lsn,optional"`
	// TxID is source.txId, the Postgres transaction id.
	TxID *int64 `parquet:"tx_id,optional"`
	// CommitTsUs is source.ts_us: the commit time of the transaction, in microseconds since epoch.
	CommitTsUs int64 `parquet:"commit_ts_us"`
	// EventTsMs is the envelope's ts_ms: when the connector processed the event.
	EventTsMs int64 `parquet:"event_ts_ms"`
	// Snapshot is source.snapshot: "false" for streamed changes, "true", "first", "last" ... for r.
	Snapshot string `parquet:"snapshot"`
	// SourceSchema and SourceTable are source.schema and source.table.
	SourceSchema string `parquet:"source_schema"`
	SourceTable  string `parquet:"source_table"`
	// Before and After are the row images as JSON objects; Before is null for c and r, After for d.
	Before *string `parquet:"before,optional"`
	After  *string `parquet:"after,optional"`
}

// ObjectKey is the bronze key of the events of topic/partition from offset first to last, whose
// first event committed at commit. first and last are the offsets of the first and last record
// of that partition in the Kafka batch, tombstones and records sent to the DLQ included, so the
// key depends on the batch alone.
func ObjectKey(table, source, topic string, partition int32, first, last int64, commit time.Time) string {
	return fmt.Sprintf("bronze/%s/dt=%s/%s-%d-%d-%d-%s.parquet",
		table, commit.UTC().Format("2006-01-02"), topic, partition, first, last, source)
}

// DLQKey is where a record that could not be decoded is kept, with its raw bytes and the reason.
func DLQKey(source, topic string, partition int32, offset int64) string {
	return fmt.Sprintf("dlq/%s/%s-%d-%d.json", topic, source, partition, offset)
}

// SourceID is a short, stable name of a Kafka cluster: of the event's eventSourceArn (MSK) or its
// bootstrapServers (self-managed Kafka).
func SourceID(eventSource string) string {
	sum := sha256.Sum256([]byte(eventSource))
	return hex.EncodeToString(sum[:4])
}

// ParseKey tells which source table a bronze key holds; ok is false for anything that is not a
// bronze object (DLQ objects, stray files).
func ParseKey(key string) (table string, ok bool) {
	rest, found := strings.CutPrefix(key, "bronze/")
	if !found || !strings.HasSuffix(key, ".parquet") {
		return "", false
	}
	table, rest, found = strings.Cut(rest, "/")
	if !found || table == "" || !strings.HasPrefix(rest, "dt=") {
		return "", false
	}
	return table, true
}
