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
	b, err := writeLoaderObjects(dir, *objects, *rows)
	if err != nil {
		return err
	}
	fmt.Printf("loader benchmark: %d bronze objects x %d rows = %.0f rows (Parquet, zstd), best of %d rounds\n", *objects, *rows, b.total, *rounds)

	var best loaderTimes
	var h *loader.Handler
	for r := 0; r < *rounds; r++ {
		t, wh, rh, err := b.round(ctx, r)
		if err != nil {
			return err
		}
		// The last round's handler times the duplicates below, on its warehouse.
		defer wh.Close()
		h = rh
		best = best.keepBest(t, r == 0)
	}
	loaderRate, refRate, perFileRate := b.total/best.load.Seconds(), b.total/best.ref.Seconds(), b.total/best.perFile.Seconds()
	fmt.Printf("  loader into DuckDB (1 event per object): %10.0f rows/s\n", loaderRate)
	fmt.Printf("  reference, INSERT ... read_parquet(file) per file:  %10.0f rows/s, ratio loader/reference %.2f (target >= 0.80)\n", perFileRate, loaderRate/perFileRate)
	fmt.Printf("  reference, one INSERT ... read_parquet([all]):      %10.0f rows/s, ratio loader/reference %.2f\n", refRate, loaderRate/refRate)
	return b.duplicates(ctx, h, best.load/time.Duration(len(b.keys)), *dups, *rows)
}

const loaderBucket = "bench"

// loaderBench is the bronze objects the loader benchmark loads, under root as S3 keys with their
// ETags and as files for DuckDB's read_parquet.
type loaderBench struct {
	dir, root          string
	keys, etags, files []string
	total              float64
}

func writeLoaderObjects(dir string, objects, rows int) (*loaderBench, error) {
	b := &loaderBench{dir: dir, root: filepath.Join(dir, "s3"), total: float64(objects * rows)}
	for i := 0; i < objects; i++ {
		recs := bronzetest.Records("transactions", int64(i*rows), rows, nil)
		key := bronzetest.Key("transactions", recs)
		data, err := bronzetest.Encode(recs)
		if err != nil {
			return nil, err
		}
		if err := bronzetest.PutBytes(b.root, loaderBucket, key, data); err != nil {
			return nil, err
		}
		sum := md5.Sum(data)
		b.keys, b.etags = append(b.keys, key), append(b.etags, hex.EncodeToString(sum[:]))
		b.files = append(b.files, "'"+filepath.Join(b.root, loaderBucket, key)+"'")
	}
	return b, nil
}

// loaderTimes are one round's load times: the loader's and the two references'.
type loaderTimes struct{ ref, perFile, load time.Duration }

// keepBest returns the faster of each time, or t itself for the first round.
func (best loaderTimes) keepBest(t loaderTimes, first bool) loaderTimes {
	if first || t.ref < best.ref {
		best.ref = t.ref
	}
	if first || t.perFile < best.perFile {
		best.perFile = t.perFile
	}
	if first || t.load < best.load {
		best.load = t.load
	}
	return best
}

// round times the references and the loader into fresh files; the caller closes the loader's
// warehouse, which its handler still uses.
func (b *loaderBench) round(ctx context.Context, r int) (loaderTimes, *duckdb.Warehouse, *loader.Handler, error) {
	var t loaderTimes
	var err error
	if t.ref, err = referenceLoad(ctx, filepath.Join(b.dir, fmt.Sprintf("reference-%d.duckdb", r)), b.files, false); err != nil {
		return t, nil, nil, err
	}
	if t.perFile, err = referenceLoad(ctx, filepath.Join(b.dir, fmt.Sprintf("perfile-%d.duckdb", r)), b.files, true); err != nil {
		return t, nil, nil, err
	}
	wh, err := duckdb.Open(ctx, filepath.Join(b.dir, fmt.Sprintf("warehouse-%d.duckdb", r)), nil)
	if err != nil {
		return t, nil, nil, err
	}
	h := loader.NewHandler(wh, loader.DirObjects(b.root), loader.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	start := time.Now()
	for i, k := range b.keys {
		if err := h.Handle(ctx, s3Created(loaderBucket, k, b.etags[i])); err != nil {
			wh.Close()
			return t, nil, nil, err
		}
	}
	// Both loads end with a checkpoint, so both are timed until the rows are in the file
	// itself, not only in the WAL.
	if err := wh.Checkpoint(ctx); err != nil {
		wh.Close()
		return t, nil, nil, err
	}
	t.load = time.Since(start)
	if m := h.Metrics(); m.RowsLoaded != int64(b.total) {
		wh.Close()
		return t, nil, nil, fmt.Errorf("the loader loaded %d rows, want %.0f", m.RowsLoaded, b.total)
	}
	fmt.Printf("  round %d: loader %v, INSERT per file %v, one INSERT %v\n", r+1,
		t.load.Round(time.Millisecond), t.perFile.Round(time.Millisecond), t.ref.Round(time.Millisecond))
	return t, wh, h, nil
}

// duplicates times events for objects already loaded, beside loading one object (perLoad).
func (b *loaderBench) duplicates(ctx context.Context, h *loader.Handler, perLoad time.Duration, dups, rows int) error {
	start := time.Now()
	for i := 0; i < dups; i++ {
		if err := h.Handle(ctx, s3Created(loaderBucket, b.keys[i%len(b.keys)], b.etags[i%len(b.keys)])); err != nil {
			return err
		}
	}
	perDup := time.Since(start) / time.Duration(dups)
	if m := h.Metrics(); m.Duplicates != int64(dups) {
		return fmt.Errorf("%d duplicates recognised, want %d", m.Duplicates, dups)
	}
	fmt.Printf("  duplicate event skipped in:              %10v per event (%d events)\n", perDup.Round(time.Microsecond), dups)
	fmt.Printf("  reference, loading one object:           %10v per object (%d rows)\n", perLoad.Round(time.Microsecond), rows)
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
