package bronze

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
)

// SnapshotWindowsTable is the bronze (and RAW) table of SnapshotWindow records.
const SnapshotWindowsTable = "snapshot_windows"

// SnapshotWindow says that an incremental snapshot read the whole of one table between two log
// positions: every row the table held from OpenLSN to CloseLSN either was read (an op r event at
// or before CloseLSN) or changed in between (a streamed event at or after OpenLSN). So a key the
// destination had alive before OpenLSN and that has no event from OpenLSN to CloseLSN was
// deleted before the window opened, a delete the destination never received (the slot's changes
// went to another destination). The capture writes one object per completed table snapshot,
// beside the data, once every row of it is delivered; the loader loads it into
// raw.snapshot_windows like any bronze object, and the history ends such keys (docs/dbt.md).
//
// It is not a change event and never goes to Kafka: the topics keep Debezium's events only.
type SnapshotWindow struct {
	TopicPrefix   string
	Schema, Table string
	ID            string    // the incremental snapshot's id
	OpenLSN       int64     // no later than the first chunk's low watermark and any change that met a chunk
	CloseLSN      int64     // the last chunk's high watermark, where its rows were emitted
	TxID          int64     // the high watermark's transaction
	OpenedAt      time.Time // the first chunk's low watermark's commit time
	Rows          int64     // op r rows emitted (distinct keys the window's r events hold at least)
	Source        string    // SourceID of the database read
	// Gap is set for a snapshot taken because the destination missed changes; nil for a
	// requested one (fin snapshot, a signal).
	Gap *Gap
}

// Gap is the stretch of the log a destination missed: it had received every change committed up
// to From (its manifest's delivered position, 0 when it held nothing) and streaming resumed
// after To (the slot's position). A row it first meets in the snapshot that followed (a posting
// made while another destination held the slot) was committed inside the gap: after every
// change the destination holds at or below From and before every streamed change of the same
// row lock above To (docs/dbt.md, balances_match_postings). Between the two, where a change
// the manifest had not yet recorded or one committed across To may sit, its place is unknown.
type Gap struct {
	From int64 `json:"from_lsn"`
	To   int64 `json:"to_lsn"`
}

// Topic is the record's topic field: never a Kafka topic, but unique per captured table and
// ending in the bronze table, as the key grammar wants.
func (w SnapshotWindow) Topic() string {
	return w.TopicPrefix + "." + w.Schema + "." + w.Table + "." + SnapshotWindowsTable
}

// Key is the window's bronze object key: first and last "offsets" are its positions, so a
// rewrite of the same window lands on the same object and two windows never share one.
func (w SnapshotWindow) Key() string {
	return ObjectKey(SnapshotWindowsTable, w.Source, w.Topic(), 0, w.OpenLSN, w.CloseLSN, w.OpenedAt)
}

// Record is the window as one bronze row: lsn the closing position, offset the opening one,
// commit_ts_us the opening time, source_schema/source_table the table read, and after the whole
// window as JSON (open_lsn, close_lsn, rows, id, table, and gap_from_lsn, gap_to_lsn with a Gap).
func (w SnapshotWindow) Record() (Record, error) {
	qualified := w.Schema + "." + w.Table
	key, err := json.Marshal(map[string]any{"table": qualified, "open_lsn": w.OpenLSN, "close_lsn": w.CloseLSN})
	if err != nil {
		return Record{}, err
	}
	window := map[string]any{"id": w.ID, "table": qualified, "open_lsn": w.OpenLSN,
		"close_lsn": w.CloseLSN, "rows": w.Rows, "opened_at": w.OpenedAt.UTC().Format(time.RFC3339Nano)}
	if w.Gap != nil {
		window["gap_from_lsn"], window["gap_to_lsn"] = w.Gap.From, w.Gap.To
	}
	after, err := json.Marshal(window)
	if err != nil {
		return Record{}, err
	}
	a := string(after)
	return Record{Topic: w.Topic(), Offset: w.OpenLSN, Key: string(key), Op: "c", LSN: &w.CloseLSN, TxID: &w.TxID,
		CommitTsUs: w.OpenedAt.UnixMicro(), EventTsMs: w.OpenedAt.UnixMilli(), Snapshot: "incremental",
		SourceSchema: w.Schema, SourceTable: w.Table, After: &a}, nil
}

// Object is the window's bronze object: its key and Parquet body.
func (w SnapshotWindow) Object() (string, []byte, error) {
	if w.OpenLSN <= 0 || w.CloseLSN < w.OpenLSN {
		return "", nil, fmt.Errorf("snapshot window of %s.%s: positions %d..%d", w.Schema, w.Table, w.OpenLSN, w.CloseLSN)
	}
	r, err := w.Record()
	if err != nil {
		return "", nil, fmt.Errorf("snapshot window of %s.%s: %w", w.Schema, w.Table, err)
	}
	body, err := EncodeParquet([]Record{r})
	if err != nil {
		return "", nil, fmt.Errorf("snapshot window of %s.%s: %w", w.Schema, w.Table, err)
	}
	return w.Key(), body, nil
}

// parquetCodec is zstd, the bronze contract's compression, at its fastest level: on JSON row
// images it compresses as well as the default level, at a fraction of the CPU, and the landing
// is CPU-bound. Its encoders keep no more memory than the pages they compress need (codec.go).
var parquetCodec compress.Codec = &zstdCodec{}

// EncodeParquet writes rows as one bronze Parquet object. The bytes depend only on the rows.
//
// Each object gets a new writer: parquet-go v0.32.0's GenericWriter.Reset leaves the column
// chunks' path_in_schema empty in the files written after it (TestEncodeParquetIsStable).
func EncodeParquet(rows []Record) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[Record](&buf,
		parquet.Compression(parquetCodec),
		// Fixed, not the build's module version: a redelivered batch handled by a newer
		// deployment still rewrites an identical object.
		parquet.CreatedBy("fin-orchestrator landing", "1", ""),
	)
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("write %d rows: %w", len(rows), err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("close parquet writer: %w", err)
	}
	return buf.Bytes(), nil
}
