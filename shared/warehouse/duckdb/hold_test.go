package duckdb_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// within runs f and fails the test if it has not returned after d: the defect under test is a
// wait that never ends.
func within(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s still waiting after %s", what, d)
	}
}

// A load that fails (here DuckDB's "Out of Memory" under a tight memory_limit) keeps no hold on
// the warehouse, and a query still reading keeps none on loads or snapshots: the next load, a
// snapshot (dbt's turn) and other queries go on while it reads. The stack once stood still for
// 33 minutes with the snapshot waiting for such a query and every load and query behind it.
func TestSnapshotDoesNotWaitForQueries(t *testing.T) {
	ctx := context.Background()
	wh, models := openSplit(t, true, duckdb.WithMemoryLimit("32MB"))
	// Close waits for the snapshot and queries in progress: after a failure here one may never end.
	defer func() {
		if !t.Failed() {
			wh.Close()
		}
	}()
	load(t, wh, bronzeObject(t, "bronze/accounts/1.parquet", 2000))

	// A slow reader: it has read a row and holds its query open until told.
	reading, release, readErr := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		readErr <- wh.QueryRows(ctx, "SELECT key FROM raw.accounts", nil, func(rows *sql.Rows) error {
			if !rows.Next() {
				return errors.New("no row")
			}
			close(reading)
			<-release
			for rows.Next() {
			}
			return nil
		})
	}()
	<-reading

	big := bronzeObject(t, "bronze/accounts/big.parquet", 300000)
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err := wh.Load(lctx, big)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "Out of Memory") || errors.Is(err, warehouse.ErrBadObject) {
		t.Fatalf("load of 300,000 rows under a 32MB limit: %v, want DuckDB's Out of Memory, not a bad object", err)
	}

	within(t, 20*time.Second, "the load after the failed one", func() error {
		_, err := wh.Load(ctx, bronzeObject(t, "bronze/accounts/2.parquet", 2000))
		return err
	})
	snap := filepath.Join(filepath.Dir(models), "snap.duckdb")
	within(t, 20*time.Second, "a snapshot beside the open query", func() error {
		_, err := wh.Snapshot(ctx, snap)
		return err
	})
	within(t, 20*time.Second, "a query beside the open query", func() error {
		if got := query(t, wh, "SELECT count(*) AS n FROM raw.accounts"); got != "n\n4000\n" {
			return errors.New("count: " + got)
		}
		return nil
	})
	if rows, objects, ledger := snapshotCounts(t, snap); rows != 4000 || objects != 2 || ledger != 2 {
		t.Fatalf("snapshot holds %d rows of %d objects, ledger %d: want the two loads that succeeded, 2000 rows each", rows, objects, ledger)
	}
	close(release)
	if err := <-readErr; err != nil {
		t.Fatalf("the slow query: %v", err)
	}
	within(t, 20*time.Second, "a snapshot after", func() error {
		_, err := wh.Snapshot(ctx, snap)
		return err
	})
}

// blockingWriter holds the first write until released: a query writing into it stays open.
type blockingWriter struct {
	writing, release chan struct{}
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	select {
	case <-b.writing:
	default:
		close(b.writing)
	}
	<-b.release
	return len(p), nil
}

// A query of RAW alone (the stack's chores: the console's counts, the reconcile pass, run at a
// low CPU priority) keeps no hold on dbt's turn on the models: lending them to dbt, which starts
// every build, does not wait for it, as it does for a query that may read a model.
func TestQueryRAWDoesNotHoldDbtsTurn(t *testing.T) {
	ctx := context.Background()
	wh, _ := openSplit(t, true)
	defer func() {
		if !t.Failed() {
			wh.Close()
		}
	}()
	load(t, wh, bronzeObject(t, "bronze/accounts/1.parquet", 20))
	out := &blockingWriter{writing: make(chan struct{}), release: make(chan struct{})}
	queryErr := make(chan error, 1)
	go func() { queryErr <- wh.QueryRAW(ctx, "SELECT count(*) AS n FROM raw.accounts", out) }()
	<-out.writing // the chore's query is open
	var resume func(context.Context) error
	within(t, 10*time.Second, "lending the models to dbt beside a query of RAW", func() error {
		var err error
		resume, err = wh.LendModels(ctx)
		return err
	})
	close(out.release)
	if err := <-queryErr; err != nil {
		t.Fatalf("the query of RAW: %v", err)
	}
	if err := resume(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(t, wh, "SELECT n FROM answer"); got != "n\n42\n" {
		t.Fatalf("the models after dbt's turn: %q, want 42", got)
	}
}
