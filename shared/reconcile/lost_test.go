package reconcile_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze/bronzetest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/reconcile"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// TestLostAgainstLag runs against real Postgres with a real replication slot and a DuckDB
// warehouse: changes the slot has confirmed but the warehouse lacks (rows deleted from it) are
// lost; changes above the confirmed position (not loaded yet) are lag.
func TestLostAgainstLag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+pgtest.SlotPatience) // the slot may wait for the cluster
	defer cancel()
	db := pgtest.New(t)
	exec := customers(ctx, t, db, 6)
	exec(`INSERT INTO accounts (account_id, customer_id, account_type, currency, balance) VALUES ($1, $2, 'CHECKING', 'EUR', 100.10)`, id(101), id(1))
	exec(`INSERT INTO transactions (transaction_id, account_id, transaction_type, amount, currency) VALUES ($1, $2, 'DEPOSIT', 100.10, 'EUR')`, id(201), id(101))

	// The warehouse holds exactly what Postgres holds, in the change events' row images.
	path := filepath.Join(t.TempDir(), "raw_store.duckdb")
	wh, err := duckdb.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { wh.Close() }()
	lsn := int64(1000)
	for _, tb := range []struct{ name, key string }{{"customers", "customer_id"}, {"accounts", "account_id"}, {"transactions", "transaction_id"}} {
		loadRows(ctx, t, db.Pool, wh, tb.name, tb.key, "c", "true", &lsn)
	}

	slot := "reconcile_" + db.Name
	pgtest.CreateSlot(t, db, slot)
	r := reconcile.New(db.Pool, wh, reconcile.Options{Slot: slot, Grace: time.Nanosecond, ClockMargin: time.Millisecond})
	pass := func(want string) reconcile.Report {
		t.Helper()
		rep, err := r.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict() != want {
			t.Fatalf("verdict %q, want %q: %s\nlost %q\nlag %q\ndifferences %q", rep.Verdict(), want, rep.Summary(), rep.Lost, rep.Lag, rep.Differences)
		}
		return rep
	}
	// Captured tables that cannot be compared are named, not failed on: the signal table (no
	// version), one the warehouse does not load.
	exec(`CREATE TABLE notes (id int PRIMARY KEY, body text, version bigint)`)
	exec(`ALTER PUBLICATION fin_cdc ADD TABLE notes`)
	// Every column of every table, timestamps and money included, agrees.
	rep := pass("agree")
	if len(rep.Tables) != 3 || rep.Tables[0].Warehouse != 6 || len(rep.Money) != 2 || rep.Money[0].Postgres != "100.10" {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Skipped) != 2 || !strings.Contains(rep.Skipped[0], "debezium_signal: not compared, it has no version column") ||
		!strings.Contains(rep.Skipped[1], "notes: not compared, the warehouse has no raw.notes") {
		t.Errorf("skipped %q, want debezium_signal (no version) and notes (not in the warehouse)", rep.Skipped)
	}

	// Committed before the slot confirms them: customer 3 updated, customer 5 deleted; customer 2
	// deleted from the warehouse.
	exec(`UPDATE customers SET email = 'c3.new@example.com' WHERE customer_id = $1`, id(3))
	exec(`DELETE FROM customers WHERE customer_id = $1`, id(5))
	wh.Close()
	raw, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `DELETE FROM raw.customers WHERE json_extract_string(after, '$.customer_id') = ?`, id(2)); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if wh, err = duckdb.Open(ctx, path, nil); err != nil {
		t.Fatal(err)
	}
	r = reconcile.New(db.Pool, wh, reconcile.Options{Slot: slot, Grace: time.Nanosecond, ClockMargin: time.Millisecond})

	// The slot has not confirmed any of it: everything behind is lag.
	if rep := pass("lag"); len(rep.Lag) != 3 {
		t.Fatalf("lag %q, want customers 2, 3 and 5", rep.Lag)
	}
	// The capture confirms past that snapshot; then more changes it has not confirmed.
	pgtest.ConfirmSlot(ctx, t, db.Pool, slot)
	exec(`INSERT INTO customers (customer_id, first_name, last_name, email) VALUES ($1, 'New', 'Test', 'c7@example.com')`, id(7))
	exec(`UPDATE customers SET email = 'c4.new@example.com' WHERE customer_id = $1`, id(4))
	exec(`DELETE FROM customers WHERE customer_id = $1`, id(6))
	// This pass sees the slot pass the first snapshot: the grace starts, lengthened by how far
	// behind its commits the warehouse loaded (the fixture's loads above).
	if rep := pass("lag"); rep.LoadDelay <= 0 || rep.LoadDelay > time.Minute {
		t.Fatalf("load delay %s, want the fixture's commit-to-load time", rep.LoadDelay)
	} else {
		time.Sleep(rep.LoadDelay)
	}
	rep = pass("lost")
	wantLost := []string{id(2) + ": version 1 was committed before", id(3) + ": version 2 was committed before", id(5) + ": deleted in Postgres before"}
	wantLag := []string{id(4) + ": version 2 in Postgres, the warehouse holds version 1", id(7) + ": version 1 in Postgres, absent", id(6) + ": deleted in Postgres, still current"}
	check := func(what string, got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s %q, want %d lines like %q", what, got, len(want), want)
			return
		}
		for _, w := range want {
			if !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, w) }) {
				t.Errorf("%s %q lacks %q", what, got, w)
			}
		}
	}
	check("lost", rep.Lost, wantLost)
	check("lag", rep.Lag, wantLag)
	var out bytes.Buffer
	rep.Write(&out)
	if !strings.Contains(out.String(), "fin snapshot") || !strings.Contains(out.String(), "LOST") {
		t.Errorf("the report does not name the loss and its remedy:\n%s", out.String())
	}
}

// TestHistoryStaysBounded: however many passes run while the slot keeps confirming, the
// Reconciler holds about three earlier snapshots, not one per pass, each on disk and removed
// once forgotten or closed.
func TestHistoryStaysBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+pgtest.SlotPatience) // the slot may wait for the cluster
	defer cancel()
	db := pgtest.New(t)
	wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "raw_store.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	slot := "bounded_" + db.Name
	pgtest.CreateSlot(t, db, slot)
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	r := reconcile.New(db.Pool, wh, reconcile.Options{Slot: slot, Grace: 10 * time.Second, Dir: dir,
		Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	kept := func() int {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	most := 0
	for i := range 40 {
		pgtest.ConfirmSlot(ctx, t, db.Pool, slot)
		if _, err := r.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		most = max(most, reconcile.HistoryLen(r))
		if n := kept(); n != reconcile.HistoryLen(r) {
			t.Fatalf("pass %d: %d passes on disk, %d held", i+1, n, reconcile.HistoryLen(r))
		}
	}
	if most < 2 || most > 3 {
		t.Errorf("held up to %d earlier snapshots over 40 passes, want 2 or 3", most)
	}
	r.Close()
	if n := kept(); n != 0 {
		t.Errorf("%d passes left on disk after Close", n)
	}
}

func id(n int) string { return fmt.Sprintf("00000000-0000-0000-0000-%012d", n) }

// loadRows puts the current rows of table that where selects into the warehouse, as change
// events (op) of one bronze object, their log positions counting on from *lsn.
func loadRows(ctx context.Context, t *testing.T, pool *pgxpool.Pool, wh *duckdb.Warehouse, table, key, op, where string, lsn *int64) {
	t.Helper()
	rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT %s::text, to_jsonb(t)::text, (extract(epoch FROM updated_at) * 1e6)::bigint FROM %s t WHERE %s`, key, table, where))
	if err != nil {
		t.Fatal(err)
	}
	var recs []bronze.Record
	for rows.Next() {
		var k, after string
		var commit int64
		if err := rows.Scan(&k, &after, &commit); err != nil {
			t.Fatal(err)
		}
		*lsn++
		l, a := *lsn, after
		recs = append(recs, bronze.Record{Topic: "fin.public." + table, Offset: l, Key: fmt.Sprintf(`{%q:%q}`, key, k),
			Op: op, LSN: &l, TxID: &l, CommitTsUs: commit, Snapshot: "false", SourceSchema: "public", SourceTable: table, After: &a})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		return
	}
	body, err := bronzetest.Encode(recs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wh.Load(ctx, warehouse.Object{Key: bronzetest.Key(table, recs), ETag: "e", Table: table,
		Fetch: func(_ context.Context, w io.Writer) (string, error) { _, err := w.Write(body); return "e", err }}); err != nil {
		t.Fatal(err)
	}
}

// customers writes n customers (ids 1 to n) and returns what runs a statement on db.
func customers(ctx context.Context, t *testing.T, db *pgtest.DB, n int) func(q string, args ...any) {
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i := 1; i <= n; i++ {
		exec(`INSERT INTO customers (customer_id, first_name, last_name, email) VALUES ($1, 'Ada', 'Test', $2)`, id(i), fmt.Sprintf("c%d@example.com", i))
	}
	return exec
}
