package stack

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze/bronzetest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/reconcile"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// TestRawCountsFollowLoads: after each load (inserts, updates, a delete, a late event below a
// key's latest, an object loaded again with other rows) the kept count equals a count afresh,
// and only the first count and the one after rows went away read RAW whole.
func TestRawCountsFollowLoads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "raw_store.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	c := newStatusCache(&Stack{wh: wh})
	// load loads recs as one object; the key of an object of other rows, when given, reloads it.
	load := func(etag string, recs []bronze.Record, key ...string) {
		t.Helper()
		key = append(key, bronzetest.Key("accounts", recs))
		body, err := bronzetest.Encode(recs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wh.Load(ctx, warehouse.Object{Key: key[0], ETag: etag, Table: "accounts",
			Fetch: func(_ context.Context, w io.Writer) (string, error) { _, err := w.Write(body); return etag, err }}); err != nil {
			t.Fatal(err)
		}
	}
	// change is an event at offset off of the key id (op u or d), at its offset's log position
	// unless lsn is given.
	change := func(off int64, id int, op string, lsn int64) bronze.Record {
		r := bronzetest.Records("accounts", off, 1, nil)[0]
		r.Key, r.Op = fmt.Sprintf(`{"id":%d}`, id), op
		if lsn != 0 {
			r.LSN = &lsn
		}
		return r
	}
	replaced := bronzetest.Records("accounts", 20, 3, nil)
	n := len(capturedTables)
	steps := []struct {
		what     string
		load     func()
		want     int64
		recounts int // counts afresh so far: each table's first, then accounts' alone
	}{
		{"five inserts, counted afresh the first time", func() { load("e", bronzetest.Records("accounts", 0, 5, nil)) }, 5, n},
		{"two updates and an insert", func() {
			load("e", []bronze.Record{change(5, 1, "u", 0), change(6, 2, "u", 0), change(7, 7, "c", 0)})
		}, 6, n},
		{"a delete", func() { load("e", []bronze.Record{change(8, 3, "d", 0)}) }, 5, n},
		{"a delete that came late, below the key's latest event", func() { load("e", []bronze.Record{change(9, 4, "d", 1)}) }, 5, n},
		{"nothing loaded", func() {}, 5, n},
		{"three inserts", func() { load("e", replaced) }, 8, n},
		{"the same object loaded again with one row: rows went away, counted afresh", func() { load("e2", replaced[:1], bronzetest.Key("accounts", replaced)) }, 6, n + 1},
		{"a delete after that", func() { load("e", []bronze.Record{change(30, 0, "d", 0)}) }, 5, n + 1},
	}
	for _, s := range steps {
		s.load()
		got, err := c.warehouseCounts(ctx)
		if err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		rows, err := c.query(ctx, reconcile.CurrentRowsSQL("accounts", "count(*)"))
		if err != nil {
			t.Fatal(err)
		}
		afresh, _ := strconv.ParseInt(rows[0][0], 10, 64)
		if got["accounts"] != s.want || afresh != s.want || c.counts.recounts != s.recounts {
			t.Fatalf("%s: kept %d, afresh %d, want %d; %d counts afresh, want %d", s.what, got["accounts"], afresh, s.want,
				c.counts.recounts, s.recounts)
		}
	}
}
