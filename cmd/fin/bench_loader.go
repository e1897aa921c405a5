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

func init() {
	register(command{name: "bench-loader", summary: "benchmark the warehouse loader against DuckDB's own read_parquet load", run: runBenchLoader})
}

// runBenchLoader loads the same bronze objects twice into fresh DuckDB files: once through the
// loader (one S3 event and one transaction with its ledger row per object), once with DuckDB's
// own INSERT INTO ... SELECT * FROM read_parquet([...]) of all files in one statement; then times
// duplicate events, against loading one object.
func runBenchLoader(ctx context.Context, args []string) error {
	fs := newFlags("bench-loader", "[flags]")
	objects := fs.Int("objects", 100, "bronze objects")
	rows := fs.Int("rows", 10000, "rows per object")
	dups := fs.Int("duplicates", 2000, "duplicate events to time")
	workers := fs.Int("concurrency", 8, "events delivered at once, as S3 invokes a Lambda or the runtime its handler")
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
	fmt.Printf("loader benchmark: %d bronze objects x %d rows = %.0f rows (Parquet, zstd)\n", *objects, *rows, total)

	// Reference: DuckDB alone, one statement over every file.
	refDB, refConn, err := openBenchDB(filepath.Join(dir, "reference.duckdb"))
	if err != nil {
		return err
	}
	list := "[" + strings.Join(files, ", ") + "]"
	if _, err := refDB.ExecContext(ctx, "CREATE TABLE ref AS SELECT * FROM read_parquet("+list+") LIMIT 0"); err != nil {
		return fmt.Errorf("reference table: %w", err)
	}
	start := time.Now()
	if _, err := refDB.ExecContext(ctx, "INSERT INTO ref SELECT * FROM read_parquet("+list+")"); err != nil {
		return fmt.Errorf("reference load: %w", err)
	}
	refTime := time.Since(start)
	refDB.Close()
	refConn.Close()

	// The loader: one event per object, as S3 sends them, several at once; then one at a time.
	wh, err := duckdb.Open(ctx, filepath.Join(dir, "warehouse.duckdb"), nil)
	if err != nil {
		return err
	}
	defer wh.Close()
	h, loadTime, err := benchLoad(ctx, wh, root, bucket, keys, etags, int64(*rows), *workers)
	if err != nil {
		return err
	}
	seqWH, err := duckdb.Open(ctx, filepath.Join(dir, "sequential.duckdb"), nil)
	if err != nil {
		return err
	}
	defer seqWH.Close()
	_, seqTime, err := benchLoad(ctx, seqWH, root, bucket, keys, etags, int64(*rows), 1)
	if err != nil {
		return err
	}
	loaderRate, refRate, seqRate := total/loadTime.Seconds(), total/refTime.Seconds(), total/seqTime.Seconds()
	fmt.Printf("  loader into DuckDB, %2d events at once: %10.0f rows/s (%v)\n", *workers, loaderRate, loadTime.Round(time.Millisecond))
	fmt.Printf("  reference read_parquet load:           %10.0f rows/s (%v)\n", refRate, refTime.Round(time.Millisecond))
	fmt.Printf("  ratio loader/reference:                %10.2f (target >= 0.80)\n", loaderRate/refRate)
	fmt.Printf("  loader, one event at a time:           %10.0f rows/s (%v), ratio %.2f\n", seqRate, seqTime.Round(time.Millisecond), seqRate/refRate)

	// Duplicates: events for objects already loaded, beside loading one object.
	perLoad := seqTime / time.Duration(len(keys))
	start = time.Now()
	for i := 0; i < *dups; i++ {
		if err := h.Handle(ctx, s3Created(bucket, keys[i%len(keys)], etags[i%len(keys)])); err != nil {
			return err
		}
	}
	perDup := time.Since(start) / time.Duration(*dups)
	if m := h.Metrics(); m.Duplicates != int64(*dups) {
		return fmt.Errorf("%d duplicates recognised, want %d", m.Duplicates, *dups)
	}
	fmt.Printf("  duplicate event skipped in:            %10v per event (%d events)\n", perDup.Round(time.Microsecond), *dups)
	fmt.Printf("  reference, loading one object:         %10v per object (%d rows)\n", perLoad.Round(time.Microsecond), *rows)
	fmt.Printf("  ratio duplicate/load:                  %10.3f\n", perDup.Seconds()/perLoad.Seconds())
	return nil
}

// benchLoad loads every object into wh, workers events at a time.
func benchLoad(ctx context.Context, wh *duckdb.Warehouse, root, bucket string, keys, etags []string, rowsPer int64, workers int) (*loader.Handler, time.Duration, error) {
	var err error
	h := loader.NewHandler(wh, loader.DirObjects(root), loader.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	next := make(chan int)
	errs := make(chan error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		go func() {
			var err error
			for i := range next {
				if err == nil {
					err = h.Handle(ctx, s3Created(bucket, keys[i], etags[i]))
				}
			}
			errs <- err
		}()
	}
	for i := range keys {
		next <- i
	}
	close(next)
	for w := 0; w < workers; w++ {
		if e := <-errs; e != nil {
			err = e
		}
	}
	elapsed := time.Since(start)
	if err != nil {
		return nil, 0, err
	}
	if got, want := h.Metrics().RowsLoaded, int64(len(keys))*rowsPer; got != want {
		return nil, 0, fmt.Errorf("the loader loaded %d rows, want %d", got, want)
	}
	return h, elapsed, nil
}

func openBenchDB(path string) (*sql.DB, *duckdriver.Connector, error) {
	c, err := duckdriver.NewConnector(path, nil)
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
