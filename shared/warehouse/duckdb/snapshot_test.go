package duckdb_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	duckdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// bronzeObject writes a bronze Parquet object of n account change events to a temporary file
// and returns it as the loader hands objects to the warehouse.
func bronzeObject(t *testing.T, key string, n int) warehouse.Object {
	t.Helper()
	file := filepath.Join(t.TempDir(), "object.parquet")
	var cols []string
	for _, c := range warehouse.RecordColumns {
		v := "'x'"
		switch c.DuckDB {
		case "INTEGER", "BIGINT":
			v = "i"
		case "JSON":
			v = `'{"account_id": "' || i || '"}'`
		}
		cols = append(cols, fmt.Sprintf("CAST(%s AS %s) AS %q", v, c.DuckDB, c.Name))
	}
	c, err := duckdriver.NewConnector("", nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf("COPY (SELECT %s FROM range(%d) r(i)) TO '%s' (FORMAT parquet)", strings.Join(cols, ", "), n, file)); err != nil {
		t.Fatalf("write bronze object: %v", err)
	}
	return warehouse.Object{Key: key, ETag: "etag-" + key, Table: "accounts",
		Fetch: func(_ context.Context, w io.Writer) (string, error) {
			f, err := os.Open(file)
			if err != nil {
				return "", err
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return "etag-" + key, err
		}}
}

func load(t *testing.T, wh *duckdb.Warehouse, obj warehouse.Object) warehouse.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := wh.Load(ctx, obj)
	if err != nil {
		t.Fatalf("load %s: %v", obj.Key, err)
	}
	return res
}

// query returns a query's CSV, failing the test on an error.
func query(t *testing.T, wh *duckdb.Warehouse, q string) string {
	t.Helper()
	var out bytes.Buffer
	if err := wh.Query(context.Background(), q, &out); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out.String()
}

// openSplit opens a warehouse in a new temporary folder as the stack does, RAW in a file of its
// own beside the models file; with gold the models file first holds gold.answer (n = 42), as
// another process (dbt) built it. It returns the warehouse, for the caller to close, and the
// models file's path.
func openSplit(t *testing.T, gold bool, opts ...duckdb.Option) (*duckdb.Warehouse, string) {
	t.Helper()
	models := filepath.Join(t.TempDir(), "warehouse.duckdb")
	if gold {
		if err := inOtherProcess(t, models, "CREATE SCHEMA gold; CREATE TABLE gold.answer AS SELECT 42 AS n"); err != nil {
			t.Fatal(err)
		}
	}
	wh, err := duckdb.Open(context.Background(), duckdb.RawPath(models), nil, append([]duckdb.Option{duckdb.WithModels(models)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return wh, models
}

// While dbt has its turn (reading a snapshot of RAW, writing the models file), loads go on and
// are queryable at once; a query on a model waits for dbt and then sees what it wrote.
func TestLoadsGoOnDuringDbtsTurn(t *testing.T) {
	ctx := context.Background()
	wh, models := openSplit(t, true)
	defer wh.Close()
	if got := query(t, wh, "SELECT n FROM answer"); got != "n\n42\n" {
		t.Fatalf("unqualified model name: %q, want the models file's answer 42", got)
	}
	load(t, wh, bronzeObject(t, "bronze/accounts/a.parquet", 2))
	if got := query(t, wh, "SELECT count(*) AS n FROM accounts"); got != "n\n2\n" {
		t.Fatalf("unqualified RAW table: %q, want 2 rows", got)
	}
	if err := inOtherProcess(t, models, "CREATE TABLE gold.t AS SELECT 1"); err == nil || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("another process wrote the models file while the stack had it attached (err %v); the test cannot show LendModels works", err)
	}

	// dbt's turn.
	snap := duckdb.SnapshotPath(models)
	if _, err := wh.Snapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	resume, err := wh.LendModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan string, 1)
	go func() {
		var out strings.Builder
		if err := wh.Query(ctx, "SELECT n FROM gold.answer", &out); err != nil {
			out.WriteString("error: " + err.Error())
		}
		answered <- out.String()
	}()
	// A load committed while dbt runs is queryable before dbt finishes.
	load(t, wh, bronzeObject(t, "bronze/accounts/b.parquet", 3))
	if got := query(t, wh, "SELECT count(*) AS n FROM raw.accounts"); got != "n\n5\n" {
		t.Fatalf("RAW during dbt's turn: %q, want the 5 rows of both loads", got)
	}
	// dbt, another process, reads the snapshot (the rows up to the snapshot: 2) and writes gold.
	if err := inOtherProcess(t, models, fmt.Sprintf(`ATTACH '%s' AS %s (READ_ONLY);
		CREATE OR REPLACE TABLE gold.answer AS SELECT count(*) AS n FROM %[2]s.raw.accounts`, snap, duckdb.RawCatalog)); err != nil {
		t.Fatalf("dbt could not read the snapshot and write the models file during its turn: %v", err)
	}
	select {
	case got := <-answered:
		t.Fatalf("a query on gold answered while dbt had the models file: %q", got)
	case <-time.After(200 * time.Millisecond):
	}
	if err := resume(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-answered; got != "n\n2\n" {
		t.Fatalf("query on gold after dbt's turn = %q, want what dbt built from the snapshot: 2", got)
	}

	// Without the stack, `fin sql` opens both files read-only and finds the same.
	wh.Close()
	ro, err := duckdb.OpenReadOnly(ctx, models)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := query(t, ro, "SELECT (SELECT n FROM answer) AS gold, (SELECT count(*) FROM raw.accounts) AS raw"); got != "gold,raw\n2,5\n" {
		t.Fatalf("read-only warehouse: %q, want gold 2 and raw 5", got)
	}
}

// A models file that still holds RAW (the one-file layout) gives it up to the RAW file on open:
// every row once, including when an earlier move was interrupted after part of it.
func TestRawMovesOutOfTheModelsFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	models := filepath.Join(dir, "warehouse.duckdb")
	old, err := duckdb.Open(ctx, models, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := bronzeObject(t, "bronze/accounts/a.parquet", 2), bronzeObject(t, "bronze/accounts/b.parquet", 3)
	load(t, old, a)
	load(t, old, b)
	old.Close()
	if err := inOtherProcess(t, models, "CREATE SCHEMA gold; CREATE TABLE gold.answer AS SELECT 42 AS n"); err != nil {
		t.Fatal(err)
	}
	// An interrupted move: a is already in RAW.
	part, err := duckdb.Open(ctx, duckdb.RawPath(models), nil)
	if err != nil {
		t.Fatal(err)
	}
	load(t, part, a)
	part.Close()

	wh, err := duckdb.Open(ctx, duckdb.RawPath(models), nil, duckdb.WithModels(models))
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	got := query(t, wh, `SELECT _object_key, count(*) AS n FROM raw.accounts GROUP BY ALL ORDER BY 1`)
	if want := "_object_key,n\nbronze/accounts/a.parquet,2\nbronze/accounts/b.parquet,3\n"; got != want {
		t.Fatalf("RAW after the move:\n%s\nwant every row of both objects once:\n%s", got, want)
	}
	if res := load(t, wh, b); !res.Duplicate {
		t.Fatalf("loading b again after the move: %+v, want a duplicate (its ledger row moved too)", res)
	}
	if got, err := wh.HighWaters(ctx); err != nil || got["bronze/accounts/"] != b.Key || len(got) != 1 {
		t.Fatalf("high waters after the move: %v (%v), want the moved ledger's newest key %s", got, err, b.Key)
	}
	got = query(t, wh, "SELECT count(*) AS n FROM information_schema.schemata WHERE catalog_name = 'warehouse' AND schema_name = 'raw'")
	if got != "n\n0\n" {
		t.Fatalf("the models file still has a raw schema after the move: %q", got)
	}
	if got := query(t, wh, "SELECT n FROM answer"); got != "n\n42\n" {
		t.Fatalf("the models survived the move: %q", got)
	}
}

// The snapshot follows RAW in place: after more loads it equals the RAW file byte for byte, was
// brought there by writing less than the whole file, and reads as RAW did; ModelNames lists what
// dbt built in the models file, nothing before its first build.
func TestSnapshotFollowsRAW(t *testing.T) {
	ctx := context.Background()
	wh, models := openSplit(t, false)
	defer wh.Close()
	if names, err := wh.ModelNames(ctx); err != nil || len(names) != 0 {
		t.Fatalf("models before dbt's first build: %v (err %v), want none", names, err)
	}
	snap := duckdb.SnapshotPath(models)
	for i, rows := range []int{200000, 3, 1000} {
		load(t, wh, bronzeObject(t, fmt.Sprintf("bronze/accounts/%d.parquet", i), rows))
		st, err := wh.Snapshot(ctx, snap)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(duckdb.RawPath(models))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(snap)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, raw) || st.Bytes != int64(len(raw)) {
			t.Fatalf("snapshot %d: %d bytes (stats %d) differ from RAW's %d", i, len(got), st.Bytes, len(raw))
		}
		t.Logf("snapshot %d: %d bytes, %d written, prepare %v, copy %v", i, st.Bytes, st.Written, st.Prepare, st.Copy)
		if st.Prepare <= 0 {
			t.Errorf("snapshot %d: no time for its first checkpoint, which the build waits for", i)
		}
		if i > 0 && st.Written > st.Bytes/2 {
			t.Errorf("snapshot %d rewrote %d of %d bytes: it must cost what changed", i, st.Written, st.Bytes)
		}
	}
	resume, err := wh.LendModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = inOtherProcess(t, models, fmt.Sprintf(`ATTACH '%s' AS %s (READ_ONLY);
		CREATE SCHEMA gold; CREATE TABLE gold.answer AS SELECT count(*) AS n FROM %[2]s.raw.accounts;
		CREATE VIEW gold.v AS SELECT 1 AS one`, snap, duckdb.RawCatalog))
	if rerr := resume(ctx); err != nil || rerr != nil {
		t.Fatalf("dbt's turn on the snapshot: %v; resume: %v", err, rerr)
	}
	if got := query(t, wh, "SELECT n FROM gold.answer"); got != "n\n201003\n" {
		t.Fatalf("gold built from the last snapshot: %q, want every RAW row (201003)", got)
	}
	if names, err := wh.ModelNames(ctx); err != nil || strings.Join(names, ",") != "answer,v" {
		t.Fatalf("models after dbt's turn: %v (err %v), want answer and v", names, err)
	}
}

// TestSnapshotDropsDuckDBsCache: DuckDB keeps the blocks of RAW it wrote at a checkpoint (and read
// for a query) in memory until its memory_limit presses, so a stack's memory followed RAW's size.
// A snapshot with no query running leaves it holding none of them: after loads that made RAW six
// times bigger, what DuckDB holds of RAW's tables stays where it was after the first, while a
// query left open keeps the warehouse as it is (the next snapshot drops the cache); the models
// stay attached, and every row is still there.
func TestSnapshotDropsDuckDBsCache(t *testing.T) {
	ctx := context.Background()
	wh, models := openSplit(t, true)
	defer wh.Close()
	snap := duckdb.SnapshotPath(models)
	held := func() int {
		t.Helper()
		out := strings.Split(strings.TrimSpace(query(t, wh,
			"SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'")), "\n")
		var n int
		fmt.Sscan(out[len(out)-1], &n)
		return n
	}
	var first int
	for i := range 6 {
		load(t, wh, bronzeObject(t, fmt.Sprintf("bronze/accounts/%d.parquet", i), 50000))
		query(t, wh, "SELECT count(DISTINCT after) FROM raw.accounts") // reads every block
		st, err := wh.Snapshot(ctx, snap)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Reopened {
			t.Fatalf("snapshot %d: DuckDB not opened again though no query ran", i)
		}
		if i == 0 {
			first = held()
		}
	}
	t.Logf("DuckDB holds %d bytes of RAW after the first snapshot, %d after the last", first, held())
	if got := held(); got > first+1<<20 {
		t.Fatalf("DuckDB holds %d bytes of RAW after 6 loads and snapshots, %d after the first: its cache follows RAW", got, first)
	}
	if got := query(t, wh, "SELECT count(*) AS n FROM raw.accounts"); got != "n\n300000\n" {
		t.Fatalf("rows after the snapshots: %q", got)
	}
	if got := query(t, wh, "SELECT n FROM gold.answer"); got != "n\n42\n" {
		t.Fatalf("the models after the snapshots: %q", got)
	}
	// A query in progress: the snapshot does not wait for it, and keeps the instance it reads.
	started, finish := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- wh.QueryRows(ctx, "SELECT 1", nil, func(*sql.Rows) error { close(started); <-finish; return nil })
	}()
	<-started
	st, err := wh.Snapshot(ctx, snap)
	close(finish)
	if err != nil || st.Reopened {
		t.Fatalf("snapshot beside a query: reopened %v, err %v; want it left open", st.Reopened, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the query beside the snapshot: %v", err)
	}
}
