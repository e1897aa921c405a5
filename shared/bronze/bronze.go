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
	"strconv"
	"strings"
	"time"
)

// SourceTables are the system of record's tables (schema public) whose changes are captured
// into bronze and loaded, parents first (Debezium's snapshot order). The capture and the loader
// both default to them; a copy is theirs to change.
func SourceTables() []string { return []string{"customers", "accounts", "transactions"} }

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
//
// ParseKey accepts the key exactly when the parts are what the landing gives: table a table name
// (see Key), topic a Kafka topic name whose last dot-separated segment is table, partition and
// offsets non-negative with first <= last, source a SourceID and commit in the years 0000-9999.
func ObjectKey(table, source, topic string, partition int32, first, last int64, commit time.Time) string {
	return Key{Table: table, Date: commit.UTC().Format(dateLayout), Topic: topic, Partition: partition,
		First: first, Last: last, Source: source}.String()
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

// Key is a bronze object key taken apart:
//
//	bronze/<Table>/dt=<Date>/<Topic>-<Partition>-<First>-<Last>-<Source>.parquet
//
// Its grammar is what ObjectKey writes and nothing else, so that a key that passes ParseKey is
// safe to name in SQL and to load into the RAW table of Table:
//
//   - Table: 1-63 characters of a-z, 0-9 and _, not starting with a digit (a Postgres table name
//     as Debezium names topics after it, and the warehouse's table-name rule);
//   - Date: YYYY-MM-DD, a calendar date;
//   - Topic: 1-249 characters of a-z, A-Z, 0-9, '.', '_' and '-' (Kafka's rule), whose last
//     dot-separated segment is Table (the landing files a topic's objects under its table);
//   - Partition, First, Last: decimal, no sign, no leading zero, within int32/int64, First <= Last;
//   - Source: 8 lower-case hex digits (SourceID).
type Key struct {
	Table       string
	Date        string
	Topic       string
	Partition   int32
	First, Last int64
	Source      string
}

const (
	keyPrefix   = "bronze/"
	keySuffix   = ".parquet"
	dateLayout  = "2006-01-02"
	maxTopicLen = 249 // Kafka's limit
	maxTableLen = 63  // Postgres's identifier limit
	sourceLen   = 8   // hex digits of SourceID
)

// String is the key's text, as ObjectKey writes it.
func (k Key) String() string {
	return fmt.Sprintf("%s%s/dt=%s/%s-%d-%d-%d-%s%s",
		keyPrefix, k.Table, k.Date, k.Topic, k.Partition, k.First, k.Last, k.Source, keySuffix)
}

// KeyError says which part of a key is outside the bronze key grammar, and why.
type KeyError struct {
	Key    string
	Part   string // prefix, layout, table, date, file name, topic, partition, first offset, last offset, source
	Reason string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("not a bronze object key %q: %s: %s", e.Key, e.Part, e.Reason)
}

// ParseKey takes a bronze object key apart. Anything ObjectKey cannot write (DLQ objects, stray
// files, hand-made names, hostile characters) fails with a *KeyError naming the part that is
// wrong; for a key it accepts, ObjectKey of its parts gives the key back.
func ParseKey(key string) (Key, error) {
	var k Key
	bad := func(part, reason string, args ...any) (Key, error) {
		return Key{}, &KeyError{Key: key, Part: part, Reason: fmt.Sprintf(reason, args...)}
	}
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if !ok {
		return bad("prefix", "want %q", keyPrefix)
	}
	var date, file string
	if k.Table, rest, ok = strings.Cut(rest, "/"); !ok {
		return bad("layout", "want bronze/<table>/dt=<YYYY-MM-DD>/<file>.parquet")
	}
	if err := checkTable(k.Table); err != "" {
		return bad("table", "%s", err)
	}
	if date, file, ok = strings.Cut(rest, "/"); !ok {
		return bad("layout", "want bronze/<table>/dt=<YYYY-MM-DD>/<file>.parquet")
	}
	if k.Date, ok = strings.CutPrefix(date, "dt="); !ok {
		return bad("date", "want dt=YYYY-MM-DD, got %q", date)
	}
	if d, err := time.Parse(dateLayout, k.Date); err != nil || d.Format(dateLayout) != k.Date {
		return bad("date", "want dt=YYYY-MM-DD, a calendar date, got %q", date)
	}
	if strings.Contains(file, "/") {
		return bad("layout", "want bronze/<table>/dt=<YYYY-MM-DD>/<file>.parquet, got more folders")
	}
	stem, ok := strings.CutSuffix(file, keySuffix)
	if !ok {
		return bad("file name", "want a name ending in %s", keySuffix)
	}
	// The topic may hold '-', the four fields after it cannot: take them from the right.
	fields := strings.Split(stem, "-")
	if len(fields) < 5 {
		return bad("file name", "want <topic>-<partition>-<first offset>-<last offset>-<source>%s", keySuffix)
	}
	n := len(fields)
	k.Topic, k.Source = strings.Join(fields[:n-4], "-"), fields[n-1]
	if err := checkTopic(k.Topic, k.Table); err != "" {
		return bad("topic", "%s", err)
	}
	p, err := decimal(fields[n-4], 32)
	if err != "" {
		return bad("partition", "%s", err)
	}
	k.Partition = int32(p)
	if k.First, err = decimal(fields[n-3], 64); err != "" {
		return bad("first offset", "%s", err)
	}
	if k.Last, err = decimal(fields[n-2], 64); err != "" {
		return bad("last offset", "%s", err)
	}
	if k.First > k.Last {
		return bad("last offset", "%d is before the first offset %d", k.Last, k.First)
	}
	if !isSourceID(k.Source) {
		return bad("source", "want the %d lower-case hex digits of a SourceID, got %q", sourceLen, k.Source)
	}
	return k, nil
}

func checkTable(t string) string {
	if t == "" || len(t) > maxTableLen {
		return fmt.Sprintf("want 1-%d characters, got %d", maxTableLen, len(t))
	}
	for i, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c == '_' || c >= '0' && c <= '9' && i > 0) {
			return fmt.Sprintf("want a-z, 0-9 and _ (not first a digit), got %q", t)
		}
	}
	return ""
}

func checkTopic(topic, table string) string {
	if topic == "" || len(topic) > maxTopicLen {
		return fmt.Sprintf("want 1-%d characters, got %d", maxTopicLen, len(topic))
	}
	for _, c := range []byte(topic) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Sprintf("want a Kafka topic name (a-z, A-Z, 0-9, '.', '_', '-'), got %q", topic)
		}
	}
	if last := topic[strings.LastIndexByte(topic, '.')+1:]; last != table {
		return fmt.Sprintf("%q does not end in the table %q", topic, table)
	}
	return ""
}

// decimal reads a non-negative int32 or int64 (bitSize) as ObjectKey writes it: digits only, no
// leading zero.
func decimal(s string, bitSize int) (int64, string) {
	if s == "" || len(s) > 1 && s[0] == '0' || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Sprintf("want a number without sign or leading zero, got %q", s)
	}
	v, err := strconv.ParseInt(s, 10, bitSize)
	if err != nil {
		return 0, fmt.Sprintf("%q is out of range", s)
	}
	return v, ""
}

func isSourceID(s string) bool {
	if len(s) != sourceLen {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
