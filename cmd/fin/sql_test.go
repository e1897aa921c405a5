package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

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
