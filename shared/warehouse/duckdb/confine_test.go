package duckdb_test

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// /sql and `fin sql` run one read-only statement on a database that reaches no files, URLs,
// extensions or other databases. Each hostile query is refused with a clear message, over
// HTTP as a client sees it, and the data and the file system are unchanged after.
func TestSQLRefusesHostileQueries(t *testing.T) {
	dir := t.TempDir()
	wh, err := duckdb.Open(context.Background(), filepath.Join(dir, "warehouse.duckdb"), nil, duckdb.WithModels(filepath.Join(dir, "models.duckdb")))
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	load(t, wh, bronzeObject(t, "bronze/accounts/a.parquet", 3))
	const count = "SELECT count(*) AS n FROM raw.accounts"
	before := query(t, wh, count)
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("hunter2\n"), 0o600)
	out := filepath.Join(dir, "out.csv")
	srv := httptest.NewServer(wh.SQLHandler("tok"))
	defer srv.Close()
	for _, tc := range []struct{ name, query, want string }{
		{"read a file", "SELECT * FROM read_text('" + secret + "')", "file system operations are disabled"},
		{"read a system file", "SELECT * FROM read_text('/etc/shadow')", "file system operations are disabled"},
		{"read a file by name", "SELECT * FROM '" + secret + "'", "does not exist"},
		{"read a URL", "SELECT * FROM read_csv('http://127.0.0.1:1/x.csv')", "disabled"},
		{"glob the file system", "SELECT * FROM glob('/etc/*')", "disabled"},
		{"write a file", "COPY raw.accounts TO '" + out + "'", "not a SELECT"},
		{"export", "EXPORT DATABASE '" + dir + "/dump'", "not a SELECT"},
		{"attach", "ATTACH '" + filepath.Join(dir, "other.duckdb") + "' AS other", "not a SELECT"},
		{"install", "INSTALL httpfs", "not a SELECT"},
		{"load", "LOAD httpfs", "not a SELECT"},
		{"lift the lock", "SET enable_external_access = true", "not a SELECT"},
		{"reset the lock", "RESET lock_configuration", "not a SELECT"},
		{"pragma", "PRAGMA enable_profiling", "not a SELECT"},
		{"call", "CALL checkpoint()", "not a SELECT"},
		{"delete", "DELETE FROM raw.accounts", "not a SELECT"},
		{"update", "UPDATE raw.accounts SET _object_key = 'x'", "not a SELECT"},
		{"insert", "INSERT INTO raw.accounts SELECT * FROM raw.accounts", "not a SELECT"},
		{"drop", "DROP TABLE raw.accounts", "not a SELECT"},
		{"create", "CREATE TABLE raw.evil AS SELECT 1", "not a SELECT"},
		{"transaction", "BEGIN", "not a SELECT"},
		{"select then delete", "SELECT 1; DELETE FROM raw.accounts", "not a SELECT"},
		{"delete then select", "DELETE FROM raw.accounts; SELECT 1", "not a SELECT"},
		{"two selects", "SELECT 1; SELECT 2", "2 statements"},
		{"explain analyze a delete", "EXPLAIN ANALYZE DELETE FROM raw.accounts", "not a SELECT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sink strings.Builder
			err := duckdb.PostQuery(context.Background(), srv.URL, "tok", tc.query, &sink)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(sink.String(), "hunter2") {
				t.Fatalf("%s: error %v, answer %q; want refused with %q", tc.query, err, sink.String(), tc.want)
			}
			if got := query(t, wh, count); got != before {
				t.Fatalf("after %s: %s, want %s", tc.query, got, before)
			}
			for _, p := range []string{out, filepath.Join(dir, "other.duckdb"), filepath.Join(dir, "dump")} {
				if _, err := os.Stat(p); err == nil {
					t.Fatalf("after %s: %s exists", tc.query, p)
				}
			}
		})
	}
	if got := query(t, wh, "SELECT count(*) AS n FROM raw.accounts WHERE _object_key = 'bronze/accounts/a.parquet'"); got != before {
		t.Fatalf("after all: %s, want %s", got, before)
	}
}

// The read-only shell still takes every form of a read.
func TestSQLAllowsReads(t *testing.T) {
	wh := open(t)
	for _, q := range []string{
		"SELECT count(*) FROM raw.accounts", "FROM raw.accounts", "DESCRIBE raw.accounts",
		"SHOW TABLES", "SUMMARIZE raw.accounts", "WITH a AS (SELECT 1 x) SELECT * FROM a",
		"SELECT 1 UNION ALL SELECT 2", "SELECT 1;", "SELECT * FROM range(3)",
	} {
		if err := wh.Query(context.Background(), q, io.Discard); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}
