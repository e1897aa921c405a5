package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	duckdriver "github.com/duckdb/duckdb-go/v2"
)

// LedgerNewestQuery is the greatest key of each table in the ledger: what the high waters must
// equal, and the GROUP BY that HighWaters ran on every catch-up pass before them.
const LedgerNewestQuery = ledgerNewestQuery

// The catch-up's start point reads no row of the ledger, whatever its size: counted (not timed)
// on a ledger of 10,000 objects of 5 tables (100,000 left the C heap too full for
// TestSnapshotHandsBackTheCHeap later in the process). Open reads the ledger once (DuckDB's profiler
// counts the rows its GROUP BY scans, which every pass scanned before); HighWaters then answers
// with the warehouse's connections closed, so it ran no query at all.
func TestHighWatersReadNoLedgerRow(t *testing.T) {
	const objects, tables = 10_000, 5
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "raw_store.duckdb")
	w, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	var perOpen int64
	plain(t, path, func(conn *sql.Conn) {
		s := fmt.Sprintf(`INSERT INTO raw._load_ledger SELECT 'bronze/' || tb || '/dt=' || strftime(DATE '2026-01-01' + (i // 500)::INTEGER, '%%Y-%%m-%%d')
			|| '/fin.public.' || tb || '-0-' || i || '-' || i || '.parquet', 'etag', tb, 1, TIMESTAMPTZ '2026-11-25 10:00:00+00'
			FROM (SELECT i, 'table' || (i %% %d) AS tb FROM range(%d) r(i))`, tables, objects)
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		perOpen = rowsScanned(t, conn, ledgerNewestQuery)
	})
	if w, err = Open(ctx, path, nil); err != nil {
		t.Fatal(err)
	}
	defer func() { w.db = nil; w.conn.Close() }()
	// Nothing answers a query any more: HighWaters must not need one.
	if err := w.db.Close(); err != nil {
		t.Fatal(err)
	}
	marks, err := w.HighWaters(ctx)
	if err != nil {
		t.Fatalf("HighWaters ran a query (the connections are closed): %v", err)
	}
	// The newest object of table k is objects - tables + k, on the last day.
	for k := range tables {
		i := objects - tables + k
		want := fmt.Sprintf("bronze/table%d/dt=2026-01-20/fin.public.table%d-0-%d-%d.parquet", k, k, i, i)
		if got := marks[fmt.Sprintf("bronze/table%d/", k)]; got != want || len(marks) != tables {
			t.Fatalf("high waters read from a ledger of %d: %v, want table%d at %s", objects, marks, k, want)
		}
	}
	t.Logf("ledger rows read on a ledger of %d objects of %d tables: 0 a catch-up pass (HighWaters), %d once at Open; %d a pass before",
		objects, tables, perOpen, perOpen)
	if perOpen != objects {
		t.Fatalf("the ledger's GROUP BY scanned %d rows, want %d: the count measures nothing", perOpen, objects)
	}
}

// plain runs f on a connection of an unconfined DuckDB on the file at path, which no warehouse
// holds open (the warehouse locks its configuration, profiling included).
func plain(t *testing.T, path string, f func(*sql.Conn)) {
	t.Helper()
	c, err := duckdriver.NewConnector(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // the instance too, not only its connections: its memory stays with the process
	db := sql.OpenDB(c)
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	f(conn)
}

// rowsScanned runs query on conn and returns the rows its table scans read, as DuckDB's
// profiler counts them.
func rowsScanned(t *testing.T, conn *sql.Conn, query string) int64 {
	t.Helper()
	ctx := context.Background()
	for _, s := range []string{"SET enable_profiling = 'no_output'", "SET profiling_mode = 'detailed'"} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := duckdriver.GetProfilingInfo(conn)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(info.Metrics["CUMULATIVE_ROWS_SCANNED"], 10, 64)
	if err != nil {
		t.Fatalf("profiler's rows scanned of %s: %v (metrics %v)", query, err, info.Metrics)
	}
	return n
}
