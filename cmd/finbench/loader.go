package main

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	duckdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze/bronzetest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// runBenchLoader loads the same bronze objects into fresh DuckDB files, in turn through the
// loader (one S3 event and one transaction with its ledger row per object) and with DuckDB's own
// INSERT INTO ... SELECT * FROM read_parquet(...): one statement per file (what the loader does
// per object, without events, ledger or copy), and one statement over all files (no per-object
// durability: DuckDB then writes whole row groups straight to the file instead of logging each
// object's rows to the WAL first). It keeps the best round of each, as the machines are shared
// and the best round is the least disturbed. Then it times duplicate events against loading one
// object.
func runBenchLoader(ctx context.Context, args []string) error {
	fs := newFlags("loader")
	objects := fs.Int("objects", 100, "bronze objects")
	rows := fs.Int("rows", 10000, "rows per object")
	rounds := fs.Int("rounds", 3, "rounds of each load; the best counts")
	dups := fs.Int("duplicates", 2000, "duplicate events to time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fin-bench-loader-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	const bucket = "bench"
	root := filepath.Join(dir, "s3")
	var keys, etags, files []string
	for i := 0; i < *objects; i++ {
		recs := bronzetest.Records("transactions", int64(i**rows), *rows, nil)
		key := bronzetest.Key("transactions", recs)
		b, err := bronzetest.Encode(recs)
		if err != nil {
			return err
		}
		if err := bronzetest.PutBytes(root, bucket, key, b); err != nil {
			return err
		}
		sum := md5.Sum(b)
		keys, etags = append(keys, key), append(etags, hex.EncodeToString(sum[:]))
		files = append(files, "'"+filepath.Join(root, bucket, key)+"'")
	}
	total := float64(*objects * *rows)
	fmt.Printf("loader benchmark: %d bronze objects x %d rows = %.0f rows (Parquet, zstd), best of %d rounds\n", *objects, *rows, total, *rounds)

	var refTime, perFileTime, loadTime time.Duration
	var h *loader.Handler
	for r := 0; r < *rounds; r++ {
		ref, err := referenceLoad(ctx, filepath.Join(dir, fmt.Sprintf("reference-%d.duckdb", r)), files, false)
		if err != nil {
			return err
		}
		perFile, err := referenceLoad(ctx, filepath.Join(dir, fmt.Sprintf("perfile-%d.duckdb", r)), files, true)
		if err != nil {
			return err
		}
		wh, err := duckdb.Open(ctx, filepath.Join(dir, fmt.Sprintf("warehouse-%d.duckdb", r)), nil)
		if err != nil {
			return err
		}
		defer wh.Close()
		h = loader.NewHandler(wh, loader.DirObjects(root), loader.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		start := time.Now()
		for i, k := range keys {
			if err := h.Handle(ctx, s3Created(bucket, k, etags[i])); err != nil {
				return err
			}
		}
		// Both loads end with a checkpoint, so both are timed until the rows are in the file
		// itself, not only in the WAL.
		if err := wh.Query(ctx, "CHECKPOINT", io.Discard); err != nil {
			return err
		}
		load := time.Since(start)
		if m := h.Metrics(); m.RowsLoaded != int64(total) {
			return fmt.Errorf("the loader loaded %d rows, want %.0f", m.RowsLoaded, total)
		}
		fmt.Printf("  round %d: loader %v, INSERT per file %v, one INSERT %v\n", r+1,
			load.Round(time.Millisecond), perFile.Round(time.Millisecond), ref.Round(time.Millisecond))
		if r == 0 || ref < refTime {
			refTime = ref
		}
		if r == 0 || perFile < perFileTime {
			perFileTime = perFile
		}
		if r == 0 || load < loadTime {
			loadTime = load
		}
	}
	loaderRate, refRate, perFileRate := total/loadTime.Seconds(), total/refTime.Seconds(), total/perFileTime.Seconds()
	fmt.Printf("  loader into DuckDB (1 event per object): %10.0f rows/s\n", loaderRate)
	fmt.Printf("  reference, INSERT ... read_parquet(file) per file:  %10.0f rows/s, ratio loader/reference %.2f (target >= 0.80)\n", perFileRate, loaderRate/perFileRate)
	fmt.Printf("  reference, one INSERT ... read_parquet([all]):      %10.0f rows/s, ratio loader/reference %.2f\n", refRate, loaderRate/refRate)

	// Duplicates: events for objects already loaded, beside loading one object.
	perLoad := loadTime / time.Duration(len(keys))
	start := time.Now()
	for i := 0; i < *dups; i++ {
		if err := h.Handle(ctx, s3Created(bucket, keys[i%len(keys)], etags[i%len(keys)])); err != nil {
			return err
		}
	}
	perDup := time.Since(start) / time.Duration(*dups)
	if m := h.Metrics(); m.Duplicates != int64(*dups) {
		return fmt.Errorf("%d duplicates recognised, want %d", m.Duplicates, *dups)
	}
	fmt.Printf("  duplicate event skipped in:              %10v per event (%d events)\n", perDup.Round(time.Microsecond), *dups)
	fmt.Printf("  reference, loading one object:           %10v per object (%d rows)\n", perLoad.Round(time.Microsecond), *rows)
	fmt.Printf("  ratio duplicate/load:                    %10.3f\n", perDup.Seconds()/perLoad.Seconds())
	return nil
}

// referenceLoad is DuckDB alone loading every file into a fresh file at path: one INSERT per
// file (each its own transaction), or one over all files.
func referenceLoad(ctx context.Context, path string, files []string, perFile bool) (time.Duration, error) {
	db, conn, err := openBenchDB(path)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	defer db.Close()
	list := "[" + strings.Join(files, ", ") + "]"
	if _, err := db.ExecContext(ctx, "CREATE TABLE ref AS SELECT * FROM read_parquet("+list+") LIMIT 0"); err != nil {
		return 0, fmt.Errorf("reference table: %w", err)
	}
	stmts := []string{"INSERT INTO ref SELECT * FROM read_parquet(" + list + ")"}
	if perFile {
		stmts = stmts[:0]
		for _, f := range files {
			stmts = append(stmts, "INSERT INTO ref SELECT * FROM read_parquet("+f+")")
		}
	}
	start := time.Now()
	for _, s := range append(stmts, "CHECKPOINT") {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return 0, fmt.Errorf("reference load: %w", err)
		}
	}
	return time.Since(start), nil
}

func openBenchDB(path string) (*sql.DB, *duckdriver.Connector, error) {
	// The same DuckDB settings as the warehouse, so the ratio measures the loader, not a setting.
	c, err := duckdriver.NewConnector(path+"?checkpoint_threshold=256MB", nil)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	return sql.OpenDB(c), c, nil
}

// s3Created is the event S3 sends for a new object: key URL-encoded, ETag quoted.
func s3Created(bucket, key, etag string) events.S3Event {
	var rec events.S3EventRecord
	rec.EventName = "ObjectCreated:Put"
	rec.S3.Bucket.Name = bucket
	rec.S3.Object.Key = url.QueryEscape(key)
	rec.S3.Object.ETag = `"` + etag + `"`
	return events.S3Event{Records: []events.S3EventRecord{rec}}
}
