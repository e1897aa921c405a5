package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze/bronzetest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// `fin sql` asks the running stack when there is one, and opens the file itself otherwise.
func TestFinSQL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "warehouse.duckdb")
	wh, err := duckdb.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	const q = "SELECT count(*) AS n, 1.50::DECIMAL(18,2) AS amount FROM raw.transactions"
	const want = "n,amount\n0,1.50\n"
	run := func(console string) (string, error) {
		var out bytes.Buffer
		err := querySQL(ctx, []string{"-warehouse", path, "-console", console, q}, &out)
		return out.String(), err
	}

	// The stack holds the file and serves /sql.
	token, err := duckdb.EnsureToken(duckdb.TokenPath(path))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /sql", wh.SQLHandler(token))
	srv := httptest.NewServer(mux)
	if got, err := run(srv.URL); err != nil || got != want {
		t.Fatalf("through the running stack: %q, %v; want %q", got, err, want)
	}
	srv.Close()

	// The stack stopped: nobody listens, the file is free.
	if err := wh.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	if got, err := run(closed); err != nil || got != want {
		t.Fatalf("with no stack running: %q, %v; want %q", got, err, want)
	}
	if _, err := run(closed); err != nil {
		t.Fatalf("second read-only open: %v", err)
	}
	var out bytes.Buffer
	if err := querySQL(ctx, []string{"-warehouse", path, "-console", closed, "SELECT nope"}, &out); err == nil {
		t.Fatal("a bad query returned no error")
	}
}

// A new user's walk: bronze objects on disk, `fin load`, then `fin sql` counts them; loading
// again adds nothing.
func TestFinLoadThenSQL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "warehouse.duckdb")
	objects := filepath.Join(dir, "s3")
	for i := 0; i < 3; i++ {
		if _, err := bronzetest.Put(objects, "fin-lake", "transactions", bronzetest.Records("transactions", int64(i*50), 50, nil)); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 2; round++ {
		if err := runLoad(ctx, []string{"-warehouse", path, objects}); err != nil {
			t.Fatalf("fin load (round %d): %v", round+1, err)
		}
		var out bytes.Buffer
		if err := querySQL(ctx, []string{"-warehouse", path, "-console", "http://127.0.0.1:1", "select count(*) as n from raw.transactions"}, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != "n\n150\n" {
			t.Fatalf("after fin load (round %d), fin sql printed %q, want n=150", round+1, out.String())
		}
	}
}
