// Package bronzetest makes bronze objects for tests and benchmarks: Debezium-shaped change events
// of a source table, written as the landing writes them (Parquet, zstd, one row per bronze.Record).
package bronzetest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// Commit is the commit time of every fixture record. A test names a fixture object's key through
// Key or KeyAt, which take their date from here, never from the clock: a key built from
// time.Now() names another object on any other day (scripts/test.sh refuses
// bronze.ObjectKey in tests for that reason).
var Commit = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// Source is the SourceID of every fixture object's Kafka cluster.
var Source = bronze.SourceID("bronzetest")

// Records returns n change events of table from Kafka offset first on: inserts with an after
// image carrying an id and a money amount as a decimal string, plus any extra columns given.
func Records(table string, first int64, n int, extra map[string]string) []bronze.Record {
	topic := "fin.public." + table
	commit := Commit
	recs := make([]bronze.Record, n)
	for i := range recs {
		off := first + int64(i)
		lsn, tx := 1_000_000+off*64, 700+off
		after := fmt.Sprintf(`{"id":%d,"amount":"%d.%02d","note":"row %d"`, off, off*3, off%100, off)
		for k, v := range extra {
			after += fmt.Sprintf(`,%q:%q`, k, v)
		}
		after += "}"
		recs[i] = bronze.Record{
			Topic: topic, Partition: 0, Offset: off,
			Key: fmt.Sprintf(`{"id":%d}`, off), Op: "c", LSN: &lsn, TxID: &tx,
			CommitTsUs: commit.UnixMicro() + off, EventTsMs: commit.UnixMilli() + off,
			Snapshot: "false", SourceSchema: "public", SourceTable: table, After: &after,
		}
	}
	return recs
}

// Write writes recs as one bronze Parquet object.
func Write(w io.Writer, recs []bronze.Record) error {
	pw := parquet.NewGenericWriter[bronze.Record](w, parquet.Compression(&parquet.Zstd))
	if _, err := pw.Write(recs); err != nil {
		return fmt.Errorf("write bronze rows: %w", err)
	}
	return pw.Close()
}

// Encode returns recs as the bytes of one bronze object.
func Encode(recs []bronze.Record) ([]byte, error) {
	var b bytes.Buffer
	err := Write(&b, recs)
	return b.Bytes(), err
}

// Key is the bronze key of recs (all of one topic and partition, in offset order).
func Key(table string, recs []bronze.Record) string {
	first, last := recs[0], recs[len(recs)-1]
	return bronze.ObjectKey(table, Source, first.Topic, first.Partition, first.Offset, last.Offset,
		time.UnixMicro(first.CommitTsUs))
}

// KeyAt is the key Records(table, first, int(last-first+1), ...) lands under: for objects a test
// writes by hand (corrupt bytes, missing objects) that must sit where a fixture would.
func KeyAt(table string, first, last int64) string {
	return KeyOn(table, first, last, Commit)
}

// KeyOn is KeyAt for a batch whose first event committed at commit (a fixture instant, never the
// clock): for tests of which days a listing reaches.
func KeyOn(table string, first, last int64, commit time.Time) string {
	return bronze.ObjectKey(table, Source, "fin.public."+table, 0, first, last, commit)
}

// Put writes recs as an object of bucket under root (the layout loader.DirObjects reads) and
// returns its key.
func Put(root, bucket, table string, recs []bronze.Record) (string, error) {
	key := Key(table, recs)
	b, err := Encode(recs)
	if err != nil {
		return "", err
	}
	return key, PutBytes(root, bucket, key, b)
}

// PutBytes writes any bytes as an object (corrupt objects, stray files).
func PutBytes(root, bucket, key string, b []byte) error {
	path := filepath.Join(root, bucket, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
