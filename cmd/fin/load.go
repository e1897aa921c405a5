package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

func init() {
	register(command{name: "load", summary: "load bronze objects kept on disk into the local warehouse (backfill, catch-up)", run: runLoad})
}

// runLoad loads every bronze object under <dir>/<bucket>/bronze/ that the warehouse has not
// loaded yet: the catch-up of the running stack, by hand, while the stack is stopped.
func runLoad(ctx context.Context, args []string) error {
	fs := newFlags("load", "[flags] <objects directory>")
	path := fs.String("warehouse", duckdb.DefaultPath(), "the DuckDB warehouse file (env WAREHOUSE_PATH)")
	bucket := fs.String("bucket", "fin-lake", "the bucket: objects are read from <objects directory>/<bucket>/<key>")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: give the directory that holds the bucket", errUsage)
	}
	dir := fs.Arg(0)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("objects directory: %w", err)
	}
	// RAW lives beside the models file, which `fin load` leaves alone (but for moving an old
	// layout's RAW tables out of it).
	wh, err := duckdb.Open(ctx, duckdb.RawPath(*path), nil, duckdb.WithModels(*path))
	if err != nil {
		return err
	}
	defer wh.Close()
	h := loader.NewHandler(wh, loader.DirObjects(dir))
	err = h.CatchUp(ctx, *bucket, loader.DirObjects(dir))
	m := h.Metrics()
	fmt.Printf("loaded %d objects (%d rows), %d already loaded, %d failed\n", m.ObjectsLoaded, m.RowsLoaded, m.Duplicates, m.FailureCount())
	return err
}
