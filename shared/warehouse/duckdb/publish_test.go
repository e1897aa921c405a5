package duckdb_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// The history marts as dbt builds them, reduced: accounts_in_cut rewritten by key (history_range:
// a key's rows from some lsn on, each written with the build's _built_at), gold.cut, and the view
// of the versions within the cut.
const martsSchema = `CREATE SCHEMA silver; CREATE SCHEMA gold;
	CREATE TABLE silver.accounts_in_cut (account_id VARCHAR, lsn BIGINT, end_lsn BIGINT, balance DECIMAL(18,2), is_current BOOLEAN, _built_at TIMESTAMPTZ);
	CREATE TABLE gold.cut (lsn BIGINT);
	CREATE VIEW gold.dim_accounts AS SELECT account_id, lsn, balance FROM warehouse.silver.accounts_in_cut
		WHERE end_lsn <= (SELECT max(lsn) FROM warehouse.gold.cut);`

// openPublishing opens a warehouse whose models hold the marts after a first build (a: 1.00 at
// lsn 10; b: 2.00 at lsn 20; the cut at 20), published for history reads.
func openPublishing(t *testing.T) (*duckdb.Warehouse, string) {
	t.Helper()
	models := filepath.Join(t.TempDir(), "warehouse.duckdb")
	if err := inOtherProcess(t, models, martsSchema+build(1, 20, "('a', 10, 10, 1.00, true)", "('b', 20, 20, 2.00, true)")); err != nil {
		t.Fatal(err)
	}
	wh, err := duckdb.Open(context.Background(), duckdb.RawPath(models), nil, duckdb.WithModels(models),
		duckdb.WithPublication(duckdb.View{Name: "gold.dim_accounts", Key: "account_id"}))
	if err != nil {
		t.Fatal(err)
	}
	return wh, models
}

// build is what build n writes: rows (a key's rows from their least lsn on, as history_range
// rewrites them) and the cut.
func build(n int, cut int, rows ...string) string {
	var s strings.Builder
	at := fmt.Sprintf("TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL %d SECOND", n)
	for _, r := range rows {
		key, lsn := strings.Split(r, ", ")[0][1:], strings.Split(r, ", ")[1]
		fmt.Fprintf(&s, "DELETE FROM silver.accounts_in_cut WHERE account_id = %s AND lsn >= %s;", key, lsn)
		fmt.Fprintf(&s, "INSERT INTO silver.accounts_in_cut SELECT *, %s FROM (VALUES %s);", at, r)
	}
	fmt.Fprintf(&s, "DELETE FROM gold.cut; INSERT INTO gold.cut VALUES (%d);", cut)
	return s.String()
}

// readHistory reads the published history of the accounts, as the API does.
func readHistory(ctx context.Context, wh *duckdb.Warehouse) (string, error) {
	var out []string
	err := duckdb.Published{Warehouse: wh}.QueryRows(ctx, "SELECT account_id, lsn, cast(balance AS VARCHAR) FROM "+duckdb.PublishedSchema("gold")+".dim_accounts ORDER BY lsn",
		nil, func(rows *sql.Rows) error {
			for rows.Next() {
				var id, balance string
				var lsn int64
				if err := rows.Scan(&id, &lsn, &balance); err != nil {
					return err
				}
				out = append(out, fmt.Sprintf("%s@%d=%s", id, lsn, balance))
			}
			return nil
		})
	return strings.Join(out, " "), err
}

// TestHistoryReadsDoNotWaitForABuild: while dbt holds the models file in the middle of a build
// (its history written, the cut not moved yet), a history read answers at once from the last
// build published, whole; after the build, from the new one. The publication brings over what
// each build rewrote, and is the models' marts exactly: a key rewritten from an older lsn (its
// later rows replaced), and a full refresh that drops a key (the publication then copied whole).
func TestHistoryReadsDoNotWaitForABuild(t *testing.T) {
	ctx := context.Background()
	wh, models := openPublishing(t)
	defer wh.Close()
	builds := []struct {
		name, history, cut, want string
	}{
		{"a new version of a",
			build(2, 0, "('a', 10, 10, 1.00, false), ('a', 30, 30, 3.00, true)"), "DELETE FROM gold.cut; INSERT INTO gold.cut VALUES (30)",
			"a@10=1.00 b@20=2.00 a@30=3.00"},
		{"a and b rewritten from an older lsn",
			build(3, 0, "('b', 20, 20, 2.50, false), ('b', 40, 40, 4.00, true)", "('a', 30, 30, 3.50, true)"), "DELETE FROM gold.cut; INSERT INTO gold.cut VALUES (40)",
			"a@10=1.00 b@20=2.50 a@30=3.50 b@40=4.00"},
		{"a full refresh without a",
			"DELETE FROM silver.accounts_in_cut WHERE account_id = 'a'; UPDATE silver.accounts_in_cut SET _built_at = TIMESTAMPTZ '2026-01-02 00:00:00+00'", "SELECT 1",
			"b@20=2.50 b@40=4.00"},
	}
	last := "a@10=1.00 b@20=2.00"
	for _, b := range builds {
		resume, err := wh.LendModels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		release := holdInOtherProcess(t, models, b.history)
		within(t, 2*time.Second, b.name+": a history read while dbt holds the models file", func() error {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			got, err := readHistory(rctx, wh)
			if err == nil && got != last {
				err = fmt.Errorf("read %q, want the last build's %q", got, last)
			}
			return err
		})
		if err := release(); err != nil {
			t.Fatalf("%s: dbt's other process: %v", b.name, err)
		}
		if err := inOtherProcess(t, models, b.cut); err != nil {
			t.Fatal(err)
		}
		if err := resume(ctx); err != nil {
			t.Fatalf("%s: publish: %v", b.name, err)
		}
		if got, err := readHistory(ctx, wh); err != nil || got != b.want {
			t.Fatalf("%s published: %q (err %v), want %q", b.name, got, err, b.want)
		}
		if diff := query(t, wh, `SELECT count(*) AS n FROM (
			(SELECT * FROM published.silver.accounts_in_cut EXCEPT ALL SELECT * FROM warehouse.silver.accounts_in_cut)
			UNION ALL (SELECT * FROM warehouse.silver.accounts_in_cut EXCEPT ALL SELECT * FROM published.silver.accounts_in_cut))`); diff != "n\n0\n" {
			t.Fatalf("%s: the publication differs from the models: %q", b.name, diff)
		}
		last = b.want
	}
}

// TestPublicationFollowsTheChange: a build's publication writes the rows the build wrote, not
// the table; one with nothing new writes nothing.
func TestPublicationFollowsTheChange(t *testing.T) {
	ctx := context.Background()
	wh, models := openPublishing(t)
	defer wh.Close()
	resume, err := wh.LendModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	many := "INSERT INTO silver.accounts_in_cut SELECT 'k' || i, 100 + i, 100 + i, 1.00, true, TIMESTAMPTZ '2026-01-01 00:00:01+00' FROM range(1000) r(i);"
	if err := inOtherProcess(t, models, many+"UPDATE gold.cut SET lsn = 2000"); err != nil {
		t.Fatal(err)
	}
	if err := resume(ctx); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		build string
		rows  int64
	}{
		{"nothing new", "SELECT 1", 0},
		{"one key's next version", build(5, 0, "('k7', 107, 107, 1.00, false), ('k7', 3000, 3000, 7.00, true)") + "UPDATE gold.cut SET lsn = 3000", 2},
	}
	for _, c := range cases {
		resume, err := wh.LendModels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = inOtherProcess(t, models, c.build)
		if rerr := resume(ctx); err != nil || rerr != nil {
			t.Fatal(err, rerr)
		}
		// The cut, one row, is copied whole each time.
		if st := wh.LastPublication(); st.Rows != c.rows || len(st.Whole) != 1 {
			t.Errorf("%s: published %d rows, whole %v; want %d and the cut alone", c.name, st.Rows, st.Whole, c.rows)
		}
	}
}

// TestPublicationsHoldNoRowsInMemory: the stack's DuckDB checkpoints RAW at a snapshot for dbt,
// not the publication, so each publication's rows stayed in memory (and in the publication's
// WAL) until the instance was next closed: 3 MB more a publication of 20,000 rows here. After
// publications that no reopen follows, DuckDB holds none of their rows in memory and the WAL
// is empty.
func TestPublicationsHoldNoRowsInMemory(t *testing.T) {
	ctx := context.Background()
	wh, models := openPublishing(t)
	defer wh.Close()
	inMemory := func() int64 {
		t.Helper()
		out := strings.Split(strings.TrimSpace(query(t, wh,
			"SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'")), "\n")
		var n int64
		fmt.Sscan(out[len(out)-1], &n)
		return n
	}
	for n := range 4 {
		resume, err := wh.LendModels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lsn := 1000 + n*100000
		// Build n writes a new version of 20,000 keys, as history_range appends them.
		err = inOtherProcess(t, models, fmt.Sprintf(`INSERT INTO silver.accounts_in_cut SELECT 'k' || i, %d + i, %d + i, 1.00, true,
			TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL %d SECOND FROM range(20000) r(i); UPDATE gold.cut SET lsn = %d`, lsn, lsn, 10+n, lsn+50000))
		if rerr := resume(ctx); err != nil || rerr != nil {
			t.Fatalf("build %d: %v; publish: %v", n, err, rerr)
		}
		if st := wh.LastPublication(); st.Rows != 20000 {
			t.Fatalf("build %d: published %d rows, want the 20,000 it wrote", n, st.Rows)
		}
		if got := inMemory(); got > 1<<20 {
			t.Errorf("after publication %d DuckDB holds %d bytes of rows not written to a file, want none", n+1, got)
		}
		if fi, err := os.Stat(duckdb.PublishedPath(models) + ".wal"); err == nil && fi.Size() > 0 {
			t.Errorf("after publication %d the publication's WAL holds %d bytes, want them in its file", n+1, fi.Size())
		}
	}
	if got, err := readHistory(ctx, wh); err != nil || !strings.Contains(got, "k19999@") {
		t.Fatalf("the history after the publications: err %v, %d bytes", err, len(got))
	}
}
