package duckdb

import (
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"runtime"
	"strings"
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
			w, dir := openWithModels(t)

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

// openWithModels opens a warehouse whose RAW and models files are in a new directory, closed
// when the test ends; it returns the directory.
func openWithModels(t *testing.T) (*Warehouse, string) {
	t.Helper()
	dir := t.TempDir()
	models := filepath.Join(dir, "warehouse.duckdb")
	w, err := Open(context.Background(), RawPath(models), nil, WithModels(models))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, dir
}

// holdingWriter calls hold at each write of a query's CSV (the query is running then).
type holdingWriter func() error

func (h holdingWriter) Write(p []byte) (int, error) { return len(p), h() }

// With loads back to back the turn passes from one load to the next and is never free, so the
// reader that ends a snapshot's query cannot reopen DuckDB, and neither could a load that let
// the turn go first: the cache of RAW stayed until the next snapshot. The load that ends first
// does it, before the next takes the turn.
func TestLoadsBackToBackReopen(t *testing.T) {
	ctx := context.Background()
	w, dir := openWithModels(t)
	reading, finish, readErr := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		readErr <- w.QueryRows(ctx, "SELECT 1", nil, func(*sql.Rows) error { close(reading); <-finish; return nil })
	}()
	<-reading
	before := w.db
	if st, err := w.Snapshot(ctx, filepath.Join(dir, "snapshot.duckdb")); err != nil || st.Reopened {
		t.Fatalf("snapshot beside a query: reopened %v, err %v; want it left due", st.Reopened, err)
	}
	w.turn <- struct{}{} // the first load has the turn as the query ends
	close(finish)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() { second <- w.take(ctx) }() // the next load waits for the turn
	waitBlocked(t, "(*Warehouse).take")
	w.release() // the first load ends: the turn goes to the second at once
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	w.use.RLock()
	after := w.db
	w.use.RUnlock()
	w.release()
	if after == before {
		t.Fatal("DuckDB was not reopened between two loads back to back after the query a snapshot met")
	}
}

// waitBlocked waits until a goroutine is blocked in a function whose name contains fn.
func waitBlocked(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for range 200 {
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, fn) && strings.Contains(g, "[select") {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no goroutine blocked in %s", fn)
}
