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
// the window that picks each key's current row must hold narrow columns only, and the images be
// read for the current rows alone. A window over whole rows held every version's image (the
// reconcile pass's transient of 150-550 MB in fin up) and needed 96-128 MB here: out of memory.
func TestCurrentRowsWindowHoldsNoRowImage(t *testing.T) {
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
		// 200 keys of 100 versions each, every row image about 4 KB: 80 MB of images, 200 current.
		`INSERT INTO raw.accounts SELECT '{"account_id":"a' || (i % 200) || '"}', 'u', i, i, i,
			json_object('account_id', 'a' || (i % 200), 'version', i // 200, 'nickname', repeat(md5(i::VARCHAR), 128))
			FROM range(20000) AS r(i)`,
		"CHECKPOINT",
		"SET memory_limit = '64MB'",
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
				t.Fatalf("the current rows under a memory_limit of 64 MB: %v", err)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("the current rows under a memory_limit of 64 MB: %v", err)
			}
			if n == 0 || n > 200 {
				t.Fatalf("%d current rows, want 1-200", n)
			}
		})
	}
}
