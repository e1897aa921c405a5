package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGenerateOnceFromTheCommandLine(t *testing.T) {
	db := pgtest.New(t)
	t.Setenv("DATABASE_URL", db.URL)
	ctx := context.Background()
	count := func() (n int) {
		db.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM accounts) + (SELECT count(*) FROM transactions)").Scan(&n)
		return n
	}

	bad := []struct{ config, field string }{
		{"customers: 5\ncolour: blue\n", "colour"},
		{"customers: -5\n", "customers"},
		{"currencies: {USD: 1, ABC: 1}\n", "currencies.ABC"},
	}
	for _, b := range bad {
		err := runGenerate(ctx, []string{"--once", "--config", writeConfig(t, b.config)})
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), b.field) {
			t.Errorf("config %q: error %v; want a usage error naming %s", b.config, err, b.field)
		}
	}
	if n := count(); n != 0 {
		t.Fatalf("refused configurations wrote %d rows", n)
	}

	good := writeConfig(t, "seed: 77\ncustomers: 25\naccounts: 40\ntransactions: 500\n")
	if err := runGenerate(ctx, []string{"--once", "--config", good}); err != nil {
		t.Fatal(err)
	}
	var c, a, x int
	db.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM accounts), (SELECT count(*) FROM transactions)").Scan(&c, &a, &x)
	if c != 25 || a != 40 || x != 500 {
		t.Fatalf("fin generate --once inserted %d/%d/%d; want exactly 25/40/500", c, a, x)
	}
}
