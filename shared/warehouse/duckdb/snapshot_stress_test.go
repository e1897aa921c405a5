package duckdb_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	duckdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// Snapshots taken while loads keep coming hold exactly the loads that finished before them:
// every row of each such load, and none of a later one.
func TestSnapshotsHoldWholeLoadsOnly(t *testing.T) {
	ctx := context.Background()
	wh, models := openSplit(t, false)
	defer wh.Close()
	dir := filepath.Dir(models)
	const loads = 24
	var batch []warehouse.Object
	for i := 0; i < loads; i++ {
		batch = append(batch, bronzeObject(t, fmt.Sprintf("bronze/accounts/%02d.parquet", i), 2000))
	}
	objs := make(chan int, loads)
	done := make(chan error, 1)
	go func() {
		for i, obj := range batch {
			if _, err := wh.Load(ctx, obj); err != nil {
				done <- err
				return
			}
			objs <- i
		}
		done <- nil
	}()
	finished := 0
	for snap := 0; ; snap++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if snap < 3 {
				t.Fatalf("only %d snapshots beside %d loads: too few to show anything", snap, loads)
			}
			return
		default:
		}
		before := finished + len(objs)
		path := filepath.Join(dir, fmt.Sprintf("snap-%d.duckdb", snap))
		if _, err := wh.Snapshot(ctx, path); err != nil {
			t.Fatal(err)
		}
		finished += len(objs) // a lower bound of the loads finished by the snapshot's end
		for len(objs) > 0 {
			<-objs
		}
		rows, objects, ledger := snapshotCounts(t, path)
		if rows != objects*2000 || objects != ledger {
			t.Fatalf("snapshot %d: %d rows of %d objects, ledger %d: want whole loads, 2000 rows each, each in the ledger", snap, rows, objects, ledger)
		}
		if objects < before {
			t.Fatalf("snapshot %d holds %d loads, but %d had finished before it began", snap, objects, before)
		}
		finished = max(finished, objects)
	}
}

func snapshotCounts(t *testing.T, path string) (rows, objects, ledger int) {
	t.Helper()
	c, err := duckdriver.NewConnector(path+"?access_mode=read_only", nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM raw.accounts), (SELECT count(DISTINCT _object_key) FROM raw.accounts),
		(SELECT count(*) FROM raw._load_ledger)`).Scan(&rows, &objects, &ledger); err != nil {
		t.Fatal(err)
	}
	return rows, objects, ledger
}
