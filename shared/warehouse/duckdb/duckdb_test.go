package duckdb_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	duckdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

func open(t *testing.T) *duckdb.Warehouse {
	t.Helper()
	wh, err := duckdb.Open(context.Background(), filepath.Join(t.TempDir(), "warehouse.duckdb"), nil)
	if err != nil {
		t.Fatalf("open warehouse: %v", err)
	}
	t.Cleanup(func() { wh.Close() })
	return wh
}

func TestSQLHandler(t *testing.T) {
	wh := open(t)
	srv := httptest.NewServer(wh.SQLHandler("s3cret"))
	defer srv.Close()
	for _, tc := range []struct {
		name, method, auth, body string
		status                   int
		want                     string
	}{
		{"no token", "POST", "", "SELECT 1", 401, "bearer token"},
		{"wrong token", "POST", "Bearer nope", "SELECT 1", 401, "bearer token"},
		{"GET", "GET", "Bearer s3cret", "", 405, "POST"},
		{"empty query", "POST", "Bearer s3cret", "  ", 400, "empty query"},
		{"bad SQL", "POST", "Bearer s3cret", "SELECT nope FROM nowhere", 400, "nowhere"},
		{"exact values", "POST", "Bearer s3cret",
			`SELECT 10.50::DECIMAL(18,2) AS amount, 'a,b' AS s, NULL AS n, TIMESTAMPTZ '2026-11-25 10:00:00+00' AS t, '{"x":1}'::JSON AS j`,
			200, "amount,s,n,t,j\n10.50,\"a,b\",,2026-11-25T10:00:00Z,\"{\"\"x\"\":1}\"\n"},
		{"RAW tables exist", "POST", "Bearer s3cret", "SELECT count(*) AS n FROM raw.accounts", 200, "n\n0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL, strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == 200 && string(body) != tc.want || tc.status != 200 && !strings.Contains(string(body), tc.want) {
				t.Fatalf("body %q, want %q", body, tc.want)
			}
		})
	}
}

func TestPostQuery(t *testing.T) {
	wh := open(t)
	srv := httptest.NewServer(wh.SQLHandler("s3cret"))
	defer srv.Close()
	// A handler that fails after the CSV started, as a query failing part-way does.
	partial := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Trailer", duckdb.SQLErrorTrailer)
		io.WriteString(rw, "n\n1\n")
		rw.Header().Set(duckdb.SQLErrorTrailer, "out of memory")
	}))
	defer partial.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // nothing listens there any more
	ctx := context.Background()
	for _, tc := range []struct {
		name, url, token, query string
		want, wantErr           string
	}{
		{"answer", srv.URL, "s3cret", "SELECT 1.50::DECIMAL(18,2) AS a", "a\n1.50\n", ""},
		{"wrong token", srv.URL, "nope", "SELECT 1", "", "401"},
		{"bad SQL", srv.URL, "s3cret", "SELECT nope FROM nowhere", "", "nowhere"},
		{"failed part-way", partial.URL, "s3cret", "SELECT 1", "n\n1\n", "out of memory"},
		{"no server", gone.URL, "s3cret", "SELECT 1", "", duckdb.ErrNoServer.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			err := duckdb.PostQuery(ctx, tc.url, tc.token, tc.query, &out)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("PostQuery error = %v, want %q", err, tc.wantErr)
			}
			if tc.name == "no server" && !errors.Is(err, duckdb.ErrNoServer) {
				t.Fatalf("PostQuery error = %v, want ErrNoServer", err)
			}
			if out.String() != tc.want {
				t.Fatalf("answer %q, want %q", out.String(), tc.want)
			}
		})
	}
}

func TestTokenFile(t *testing.T) {
	path := duckdb.TokenPath(filepath.Join(t.TempDir(), "state", "warehouse.duckdb"))
	tok, err := duckdb.EnsureToken(path)
	if err != nil || len(tok) < 32 {
		t.Fatalf("EnsureToken = %q, %v; want a long random token", tok, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if again, err := duckdb.EnsureToken(path); again != tok || err != nil {
		t.Fatalf("second EnsureToken = %q, %v; want the same token", again, err)
	}
	os.Chmod(path, 0o644)
	if _, err := duckdb.ReadToken(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable token file was accepted (err %v)", err)
	}
	for _, bad := range []struct{ content, want string }{
		{"", "fewer than 32"},
		{"abc\n", "fewer than 32"},
		{strings.Repeat("z", 64), "corrupt"},
	} {
		os.WriteFile(path, []byte(bad.content), 0o600)
		os.Chmod(path, 0o600)
		if _, err := duckdb.EnsureToken(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("token file %q: EnsureToken error %v, want one naming %s and %q", bad.content, err, path, bad.want)
		}
	}
}

// TestMain lets the test binary play another process (dbt) that opens the warehouse file.
func TestMain(m *testing.M) {
	if path := os.Getenv("FIN_TEST_OTHER_PROCESS_DB"); path != "" {
		os.Exit(otherProcess(path, os.Getenv("FIN_TEST_OTHER_PROCESS_SQL"), os.Getenv("FIN_TEST_OTHER_PROCESS_HOLD") != ""))
	}
	os.Exit(m.Run())
}

// otherProcess runs stmt on the file at path; with hold, it then says "held" and keeps the file
// open until its standard input closes, as dbt keeps the models file through a build.
func otherProcess(path, stmt string, hold bool) int {
	c, err := duckdriver.NewConnector(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	db := sql.OpenDB(c)
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if hold {
		fmt.Println("held")
		io.Copy(io.Discard, os.Stdin)
	}
	return 0
}

// holdInOtherProcess runs stmt on the file at path from another process, which keeps the file
// open (and DuckDB's lock on it) until the returned function, which waits for it to exit.
func holdInOtherProcess(t *testing.T, path, stmt string) (release func() error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FIN_TEST_OTHER_PROCESS_DB="+path, "FIN_TEST_OTHER_PROCESS_SQL="+stmt, "FIN_TEST_OTHER_PROCESS_HOLD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "held\n" {
		stdin.Close()
		t.Fatalf("the other process did not hold %s: %v: %s", path, cmd.Wait(), stderr.String())
	}
	return func() error {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%v: %s", err, stderr.String())
		}
		return nil
	}
}

// inOtherProcess runs stmt on the warehouse file from another process.
func inOtherProcess(t *testing.T, path, stmt string) error {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FIN_TEST_OTHER_PROCESS_DB="+path, "FIN_TEST_OTHER_PROCESS_SQL="+stmt)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("WAREHOUSE_PATH", "")
	t.Setenv("FIN_STATE_DIR", "")
	if got := duckdb.DefaultPath(); !strings.HasSuffix(got, "/.fin/warehouse.duckdb") || strings.Contains(got, "shared/warehouse") {
		t.Errorf("DefaultPath from inside the repository = %s, want <repo>/.fin/warehouse.duckdb", got)
	}
	t.Setenv("FIN_STATE_DIR", "/var/fin")
	if got := duckdb.DefaultPath(); got != "/var/fin/warehouse.duckdb" {
		t.Errorf("with FIN_STATE_DIR: %s", got)
	}
	t.Setenv("WAREHOUSE_PATH", "/x/w.duckdb")
	if got := duckdb.DefaultPath(); got != "/x/w.duckdb" {
		t.Errorf("with WAREHOUSE_PATH: %s", got)
	}
}

// File reads with bound arguments and lets go of the file after each read, so a standalone
// reader never keeps the stack or dbt out of it.
func TestFileReadsAndLetsGo(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "warehouse.duckdb")
	if err := inOtherProcess(t, path, "CREATE TABLE t AS SELECT * FROM (VALUES (1, 'one'), (2, 'two')) v(n, name)"); err != nil {
		t.Fatal(err)
	}
	f := duckdb.File{Path: path}
	for i := 0; i < 2; i++ {
		var names []string
		err := f.QueryRows(ctx, "SELECT name FROM t WHERE n = ?", []any{2}, func(rows *sql.Rows) error {
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					return err
				}
				names = append(names, s)
			}
			return nil
		})
		if err != nil || len(names) != 1 || names[0] != "two" {
			t.Fatalf("read %d: %v, %v; want [two]", i, names, err)
		}
		// Between reads another process may write the file.
		if err := inOtherProcess(t, path, fmt.Sprintf("INSERT INTO t VALUES (%d, 'more')", 10+i)); err != nil {
			t.Fatalf("after a read the file is still held: %v", err)
		}
	}
	if err := (duckdb.File{Path: filepath.Join(t.TempDir(), "none.duckdb")}).QueryRows(ctx, "SELECT 1", nil, func(*sql.Rows) error { return nil }); err == nil {
		t.Fatal("a missing warehouse file read without error")
	}
}

// TestMemoryLimit: the warehouse holds DuckDB to the limit and the threads it is given (locked,
// like the rest of its configuration), caches no object it loaded, and a limit DuckDB cannot read
// fails the open with the value named.
func TestMemoryLimit(t *testing.T) {
	tests := []struct {
		limit       string
		threads     int
		want        string // current_setting('memory_limit'), as DuckDB prints it
		wantThreads int64  // 0: DuckDB's default, not checked
		wantErr     string
	}{
		{"256MB", 0, "244.1 MiB", 0, ""},
		{"1GiB", 1, "1.0 GiB", 1, ""},
		{"lots", 0, "", 0, "lots"},
	}
	for _, tc := range tests {
		t.Run(tc.limit, func(t *testing.T) {
			wh, err := duckdb.Open(t.Context(), filepath.Join(t.TempDir(), "raw_store.duckdb"), nil,
				duckdb.WithMemoryLimit(tc.limit), duckdb.WithThreads(tc.threads))
			if tc.wantErr != "" {
				if err == nil {
					wh.Close()
					t.Fatalf("memory limit %q: opened, want an error", tc.limit)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("memory limit %q: %v, want it named", tc.limit, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer wh.Close()
			var got, cache string
			var threads int64
			err = wh.QueryRows(t.Context(), "SELECT current_setting('memory_limit'), current_setting('enable_external_file_cache')::VARCHAR, current_setting('threads')", nil,
				func(r *sql.Rows) error {
					if !r.Next() {
						return errors.New("no row")
					}
					return r.Scan(&got, &cache, &threads)
				})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || cache != "false" {
				t.Errorf("memory_limit %q, external file cache %s; want %q and false", got, cache, tc.want)
			}
			if tc.wantThreads != 0 && threads != tc.wantThreads {
				t.Errorf("threads %d, want %d", threads, tc.wantThreads)
			}
			for _, set := range []string{"SET memory_limit = '64GB'", "SET threads = 8"} {
				if err := wh.Query(t.Context(), set, io.Discard); err == nil {
					t.Errorf("a query ran %s", set)
				}
			}
		})
	}
}

// A checkpoint is refused by the read-only shell and done by its own named operation.
func TestCheckpointIsItsOwnOperation(t *testing.T) {
	wh := open(t)
	if err := wh.Query(t.Context(), "CHECKPOINT", io.Discard); err == nil {
		t.Error("the read-only shell ran CHECKPOINT")
	}
	if err := wh.Checkpoint(t.Context()); err != nil {
		t.Errorf("Checkpoint: %v", err)
	}
	wh.Close()
	if err := wh.Checkpoint(t.Context()); err == nil {
		t.Error("Checkpoint on a closed warehouse succeeded")
	}
}
