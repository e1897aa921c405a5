package reconcile_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/reconcile"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// TestSnapshotWindowEndsKeysWithoutEvents loads change events and a completed incremental
// snapshot's window into a DuckDB warehouse: the rows RAW says the table holds lose exactly the
// keys whose last event comes before the window (deleted while another destination consumed
// the slot), and only once the window's rows are all loaded.
func TestSnapshotWindowEndsKeysWithoutEvents(t *testing.T) {
	ctx := context.Background()
	wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "raw_store.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ev := func(key, op, snapshot string, lsn int64) bronze.Record {
		after := fmt.Sprintf(`{"customer_id":%q,"version":1}`, key)
		return bronze.Record{Topic: "fin.public.customers", Key: fmt.Sprintf(`{"customer_id":%q}`, key), Op: op, LSN: &lsn,
			TxID: &lsn, CommitTsUs: at.UnixMicro(), Snapshot: snapshot, SourceSchema: "public", SourceTable: "customers", After: &after}
	}
	load := func(table string, key string, recs ...bronze.Record) {
		t.Helper()
		for i := range recs {
			recs[i].Offset = int64(i)
		}
		body, err := bronze.EncodeParquet(recs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wh.Load(ctx, warehouse.Object{Key: key, ETag: key, Table: table,
			Fetch: func(_ context.Context, w io.Writer) (string, error) { _, err := w.Write(body); return key, err }}); err != nil {
			t.Fatal(err)
		}
	}
	current := func() []string {
		t.Helper()
		var buf bytes.Buffer
		if err := wh.Query(ctx, reconcile.CurrentRowsSQL("customers", "json_extract_string(after, '$.customer_id') AS k")+" ORDER BY k", &buf); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs[1:] {
			out = append(out, r[0])
		}
		return out
	}
	// Before the window (open 100, close 200): gone (deleted in the gap), read, streamed inside,
	// deleted and streamed; inside: read by a chunk, inserted after its chunk passed; after it: a
	// later update of the gone key's neighbour.
	load("customers", "bronze/customers/dt=2026-11-25/fin.public.customers-0-0-5-0000000a.parquet",
		ev("gone", "c", "false", 10), ev("read", "c", "false", 11), ev("changed", "c", "false", 12),
		ev("deleted", "c", "false", 13), ev("deleted", "d", "false", 14), ev("late", "c", "false", 15))
	w := bronze.SnapshotWindow{TopicPrefix: "fin", Schema: "public", Table: "customers", ID: "s1", OpenLSN: 100, CloseLSN: 200,
		TxID: 200, OpenedAt: at, Rows: 2, Source: "0000000b"}
	key, body, err := w.Object()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wh.Load(ctx, warehouse.Object{Key: key, ETag: "w", Table: bronze.SnapshotWindowsTable,
		Fetch: func(_ context.Context, wr io.Writer) (string, error) { _, err := wr.Write(body); return "w", err }}); err != nil {
		t.Fatal(err)
	}
	everyone := []string{"changed", "gone", "late", "read"}
	if got := current(); !slices.Equal(got, everyone) {
		t.Errorf("window loaded before its rows: current %q, want %q (nothing ended yet)", got, everyone)
	}
	load("customers", "bronze/customers/dt=2026-11-25/fin.public.customers-0-6-9-0000000a.parquet",
		ev("changed", "u", "false", 120), ev("read", "r", "incremental", 150), ev("new", "c", "false", 160),
		ev("late", "r", "incremental", 200))
	if got, want := current(), []string{"changed", "late", "new", "read"}; !slices.Equal(got, want) {
		t.Errorf("window and its rows loaded: current %q, want %q (gone ended)", got, want)
	}
}
