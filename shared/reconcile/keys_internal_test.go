package reconcile

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
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
	currentRowsUnderLimit(t, `SELECT '{"account_id":"a' || (i % 200) || '"}', 'u', i, i, i,
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
	currentRowsUnderLimit(t, `SELECT '{"account_id":"a' || (i % 20) || '"}', 'u', i, i, i,
		json_object('account_id', 'a' || (i % 20), 'version', i // 20, 'nickname', 'n')
		FROM range(1000000) AS r(i)`, "32MB", 20)
}

// currentRowsUnderLimit fills raw.accounts with rows (a SELECT: rawAccounts), then runs a pass's
// query of it under memoryLimit with nowhere to spill, over every key and over a sweep's range:
// each must answer, with 1 to most current rows.
func currentRowsUnderLimit(t *testing.T, rows, memoryLimit string, most int) {
	t.Helper()
	ctx := context.Background()
	db := rawAccounts(t, rows, "SET memory_limit = '"+memoryLimit+"'", "SET temp_directory = ''", "SET threads = 2")
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

// TestOuterScanOfAFewKeysReadsTheirRowsAlone: a pass of a few changed keys reads their current
// rows' images by row id (rowid IN (...)) from a scan of the whole table; DuckDB pushes the
// semi-join's row ids into that scan (join_filter_pushdown: the ids themselves, their min/max, a
// Bloom filter), so it yields about the current rows, not every version of every key. The key
// condition is not repeated in that scan: it is on json_extract_string(key, ...), which no zone
// map prunes, and repeated it changed neither the rows the scan yielded nor the CPU time
// (docs/benchmarks.md). Without the pushdown (set off here to show it) the scan yields every row.
func TestOuterScanOfAFewKeysReadsTheirRowsAlone(t *testing.T) {
	ctx := context.Background()
	const rows = 200_000
	// 2,000 keys of 100 versions each, in runs, the runs of a key range scattered through the
	// table: a few keys' current rows lie in row groups far apart.
	db := rawAccounts(t, fmt.Sprintf(`SELECT '{"account_id":"a' || lpad((((i // 100) * 797) %% 2000)::VARCHAR, 4, '0') || '"}', 'u', i, i, i,
			json_object('account_id', 'a' || lpad((((i // 100) * 797) %% 2000)::VARCHAR, 4, '0'), 'version', i, 'nickname', md5(i::VARCHAR))
			FROM range(%d) AS r(i)`, rows), "SET threads = 1")
	tb := table{name: "accounts", key: "account_id", columns: []column{{name: "nickname"}}}
	named := []string{"a0007", "a0500", "a1234", "a1999"}
	for _, tc := range []struct {
		name     string
		ks       *keySet
		pushdown bool
		maxOut   int // rows the scan of the images may yield
	}{
		{"named keys and the sweep's range", &keySet{keys: named, lo: "a0100", hi: "a0104"}, true, 1_000},
		{"the sweep's range", &keySet{lo: "a0100", hi: "a0110"}, true, 1_000},
		{"without the pushdown", &keySet{keys: named, lo: "a0100", hi: "a0104"}, false, rows},
	} {
		t.Run(tc.name, func(t *testing.T) {
			profile := filepath.Join(t.TempDir(), "profile.json")
			disabled := "''"
			if !tc.pushdown {
				disabled = "'join_filter_pushdown'"
			}
			for _, s := range []string{
				"SET disabled_optimizers = " + disabled,
				"PRAGMA enable_profiling = 'json'",
				`SET custom_profiling_settings = '{"OPERATOR_CARDINALITY": "true", "OPERATOR_NAME": "true", "EXTRA_INFO": "true"}'`,
				"SET profiling_output = '" + profile + "'",
			} {
				if _, err := db.ExecContext(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			n := countRows(t, db, warehouseQuery(tb, tc.ks))
			if _, err := db.ExecContext(ctx, "PRAGMA disable_profiling"); err != nil {
				t.Fatal(err)
			}
			out := imageScanRows(t, profile)
			t.Logf("%d current rows; the scan of their images yielded %d of %d", n, out, rows)
			if n == 0 || out < n {
				t.Fatalf("%d current rows, the scan of the images yielded %d: the profile is not read right", n, out)
			}
			if tc.pushdown && out > tc.maxOut || !tc.pushdown && out != rows {
				t.Errorf("the scan of the images yielded %d rows of %d, want at most %d (pushdown %v)", out, rows, tc.maxOut, tc.pushdown)
			}
		})
	}
}

// countRows runs query and counts its rows.
func countRows(t *testing.T, db *sql.DB, query string) int {
	t.Helper()
	rs, err := db.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	n := 0
	for rs.Next() {
		n++
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// imageScanRows reads a DuckDB JSON profile: the rows yielded by the table scan that reads the
// row images (its projections name after).
func imageScanRows(t *testing.T, profile string) int {
	t.Helper()
	b, err := os.ReadFile(profile)
	if err != nil {
		t.Fatal(err)
	}
	type node struct {
		Name     string          `json:"operator_name"`
		Rows     int             `json:"operator_cardinality"`
		Extra    json.RawMessage `json:"extra_info"`
		Children []node          `json:"children"`
	}
	var root node
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatalf("profile %s: %v", profile, err)
	}
	found := -1
	var walk func(n node)
	walk = func(n node) {
		if strings.Contains(n.Name, "SCAN") && strings.Contains(string(n.Extra), `"after"`) {
			found = n.Rows
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(root)
	if found < 0 {
		t.Fatalf("no scan of the row images in the profile:\n%s", b)
	}
	return found
}

// rawAccounts is a DuckDB file holding raw.accounts filled by rows (a SELECT of its columns:
// key, op, lsn, offset, commit_ts_us, after), checkpointed, then settings applied.
func rawAccounts(t *testing.T, rows string, settings ...string) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(t.TempDir(), "raw_store.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	for _, s := range append([]string{
		"CREATE SCHEMA raw",
		`CREATE TABLE raw.accounts (key VARCHAR, op VARCHAR, lsn BIGINT, "offset" BIGINT, commit_ts_us BIGINT, "after" JSON)`,
		"INSERT INTO raw.accounts " + rows,
		"CHECKPOINT",
	}, settings...) {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return db
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
