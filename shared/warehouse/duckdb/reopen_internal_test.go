package duckdb

import (
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// A snapshot that meets a query leaves DuckDB's reopen (which drops its cache of RAW) to the last
// reader, whichever way it read: the instance is a new one once the query ends, not at the next
// snapshot. Left to the next snapshot, a run of snapshots that each met a query kept the cache
// for minutes (docs/benchmarks.md).
func TestSnapshotReopensOnceTheQueryItMetEnds(t *testing.T) {
	rows := func(ctx context.Context, w *Warehouse, hold func() error) error {
		return w.QueryRows(ctx, "SELECT 1", nil, func(rows *sql.Rows) error { return hold() })
	}
	for _, tc := range []struct {
		name string
		read func(ctx context.Context, w *Warehouse, hold func() error) error
		// loading: a load has the turn as the query ends; the reopen waits for its end.
		loading bool
	}{
		{"QueryRows (with the models)", rows, false},
		{"QueryRAW (RAW alone)", func(ctx context.Context, w *Warehouse, hold func() error) error {
			return w.QueryRAW(ctx, "SELECT 1", holdingWriter(hold))
		}, false},
		{"a load going on as the query ends", rows, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			models := filepath.Join(dir, "warehouse.duckdb")
			w, err := Open(ctx, RawPath(models), nil, WithModels(models))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()

			reading, release, readErr := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			var once sync.Once
			go func() {
				readErr <- tc.read(ctx, w, func() error { once.Do(func() { close(reading); <-release }); return nil })
			}()
			<-reading
			before := w.db
			st, err := w.Snapshot(ctx, filepath.Join(dir, "snapshot.duckdb"))
			if err != nil {
				t.Fatal(err)
			}
			if st.Reopened {
				t.Fatal("the snapshot reopened DuckDB under a running query")
			}
			if tc.loading {
				w.turn <- struct{}{}
			}
			close(release)
			select {
			case err := <-readErr:
				if err != nil {
					t.Fatalf("the query: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the query did not end")
			}
			if tc.loading {
				if w.db != before {
					t.Fatal("DuckDB was reopened while a load had the turn")
				}
				w.release()
			}
			w.use.RLock()
			after := w.db
			w.use.RUnlock()
			if after == before {
				t.Fatal("DuckDB was not reopened when the query the snapshot met ended: its cache of RAW stays until the next snapshot")
			}
			// The new instance answers, confined as the first was.
			if err := w.QueryRAW(ctx, "SELECT count(*) FROM raw.accounts", io.Discard); err != nil {
				t.Fatalf("query after the reopen: %v", err)
			}
		})
	}
}

// holdingWriter calls hold at each write of a query's CSV (the query is running then).
type holdingWriter func() error

func (h holdingWriter) Write(p []byte) (int, error) { return len(p), h() }
