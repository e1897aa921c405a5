package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// TestNamedKeysAreJoinedNotCompared: a pass of what changed looks its named keys up in a hash
// join, whatever their number; as a list of constants beside the sweep's range (an OR) DuckDB
// compared every row's key with each of them, and a pass of 20,000 keys ran for a minute holding
// the warehouse's read lock.
func TestNamedKeysAreJoinedNotCompared(t *testing.T) {
	ctx := context.Background()
	wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "raw_store.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("c%03d", i)
	}
	for _, tc := range []struct {
		name string
		ks   *keySet
	}{
		{"named keys and the sweep's range", &keySet{keys: keys, lo: "c200", hi: "c300"}},
		{"named keys and the sweep to the end", &keySet{keys: keys, lo: "c200", toEnd: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := table{name: "customers", key: "customer_id", columns: []column{{name: "email"}}}
			var plan strings.Builder
			err := wh.QueryRows(ctx, "EXPLAIN "+warehouseQuery(tb, tc.ks), nil, func(rows *sql.Rows) error {
				for rows.Next() {
					var k, v string
					if err := rows.Scan(&k, &v); err != nil {
						return err
					}
					plan.WriteString(v)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(plan.String(), "HASH_JOIN") || strings.Contains(plan.String(), "'c050'") {
				t.Fatalf("the named keys are not looked up in a hash join:\n%s", plan.String())
			}
		})
	}
}

// TestCurrentRowsWindowHoldsNoRowImage runs a pass's query of a table whose keys have many
// versions with large row images under a memory_limit below their size, with nowhere to spill:
// the current row of each key must be picked over narrow columns only, and the images be read
// for the current rows alone. A window over whole rows held every version's image (the
// reconcile pass's transient of 150-550 MB in fin up) and needed 96-128 MB here: out of memory.
func TestCurrentRowsWindowHoldsNoRowImage(t *testing.T) {
	// 200 keys of 100 versions each, every row image about 4 KB: 80 MB of images, 200 current.
	currentRowsUnderLimit(t, `INSERT INTO raw.accounts SELECT '{"account_id":"a' || (i % 200) || '"}', 'u', i, i, i,
		json_object('account_id', 'a' || (i % 200), 'version', i // 200, 'nickname', repeat(md5(i::VARCHAR), 128))
		FROM range(20000) AS r(i)`, "64MB", 200)
}

// TestCurrentRowsHoldOneRowPerKey runs a pass's query of a table of few keys with many small
// versions (accounts: every transfer updates two balances) under a memory_limit below what its
// versions' narrow columns take, with nowhere to spill: the current row of each key must be
// picked holding one row a key (an aggregate), not every version. A window over each key's
// events (row_number()) held them all, so the pass's memory grew with RAW's history; here it ran
// out of memory.
func TestCurrentRowsHoldOneRowPerKey(t *testing.T) {
	// 20 keys of 50,000 versions each: 1,000,000 rows, 20 current.
	currentRowsUnderLimit(t, `INSERT INTO raw.accounts SELECT '{"account_id":"a' || (i % 20) || '"}', 'u', i, i, i,
		json_object('account_id', 'a' || (i % 20), 'version', i // 20, 'nickname', 'n')
		FROM range(1000000) AS r(i)`, "32MB", 20)
}

// currentRowsUnderLimit fills raw.accounts with rows (an INSERT), then runs a pass's query of it
// under memoryLimit with nowhere to spill, over every key and over a sweep's range: each must
// answer, with 1 to most current rows.
func currentRowsUnderLimit(t *testing.T, rows, memoryLimit string, most int) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("duckdb", filepath.Join(t.TempDir(), "raw_store.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, s := range []string{
		"CREATE SCHEMA raw",
		`CREATE TABLE raw.accounts (key VARCHAR, op VARCHAR, lsn BIGINT, "offset" BIGINT, commit_ts_us BIGINT, "after" JSON)`,
		rows,
		"CHECKPOINT",
		"SET memory_limit = '" + memoryLimit + "'",
		"SET temp_directory = ''",
		"SET threads = 2",
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	tb := table{name: "accounts", key: "account_id", columns: []column{{name: "nickname"}}}
	for _, tc := range []struct {
		name string
		ks   *keySet
	}{
		{"every key", nil},
		{"the sweep's range", &keySet{lo: "a1", toEnd: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := db.QueryContext(ctx, warehouseQuery(tb, tc.ks))
			if err != nil {
				t.Fatalf("the current rows under a memory_limit of %s: %v", memoryLimit, err)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("the current rows under a memory_limit of %s: %v", memoryLimit, err)
			}
			if n == 0 || n > most {
				t.Fatalf("%d current rows, want 1-%d", n, most)
			}
		})
	}
}

// TestRowImageParsedOnce: a pass's query parses each current row's image once (one json_extract
// of every column's path, a list), not once a column: with a dozen columns that was a dozen
// parses of every row (a third of the query's CPU over 200,000 rows of 16 columns, Python
// duckdb 1.5.6, branch h/sweeprows). DuckDB computes a subquery's projection once however many
// items of it the outer query takes.
func TestRowImageParsedOnce(t *testing.T) {
	tb := table{name: "customers", key: "customer_id", columns: []column{{name: "email"}, {name: "full_name"}, {name: "status"}}}
	for _, ks := range []*keySet{nil, {lo: "c1", toEnd: true}} {
		q := warehouseQuery(tb, ks)
		if n := strings.Count(q, "(after"); n != 1 {
			t.Errorf("the row image is read by %d expressions, want 1:\n%s", n, q)
		}
	}
}

// TestLatestIsTheWindowsFirst: LatestSQL picks, of each key, the event that row_number() OVER
// (PARTITION BY key ORDER BY lsn DESC, "offset" DESC) numbers 1, NULL positions and offsets
// included (DuckDB sorts NULLs last, also descending: a NULL ranks below every number).
func TestLatestIsTheWindowsFirst(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// Per key, (lsn, offset) pairs unique within it: which one is latest is never a tie.
	if _, err := db.ExecContext(ctx, `CREATE TABLE ev AS SELECT * FROM (VALUES
		('a', 5, 1), ('a', NULL, 9), ('a', 5, 2), ('a', 4, 7),
		('b', NULL, 3), ('b', NULL, 8), ('b', NULL, NULL),
		('c', 1, NULL), ('c', 1, 0), ('c', NULL, 5),
		('d', NULL, NULL), ('e', 0, NULL), ('e', NULL, 0)) AS v(key, lsn, "offset")`); err != nil {
		t.Fatal(err)
	}
	picks := func(q string) string {
		t.Helper()
		var out string
		if err := db.QueryRowContext(ctx, "SELECT string_agg(key || ':' || coalesce(lsn::VARCHAR, '-') || '/' || coalesce(\"offset\"::VARCHAR, '-'), ' ' ORDER BY key) FROM ("+q+")").Scan(&out); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return out
	}
	want := picks(`SELECT key, lsn, "offset" FROM ev QUALIFY row_number() OVER (PARTITION BY key ORDER BY lsn DESC, "offset" DESC) = 1`)
	got := picks(`SELECT key, l.lsn, l."offset" FROM (SELECT key, ` + LatestSQL(`{'lsn': lsn, 'offset': "offset"}`) + ` AS l FROM ev GROUP BY key)`)
	if got != want {
		t.Fatalf("LatestSQL picks %s, the window %s", got, want)
	}
}
