package duckdb_test

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// A load step of TestHighWaters.
type hwLoad struct {
	key  string
	rows int    // 0: an object of no rows, which fails (ErrNothingLoaded); -1: not Parquet (ErrBadObject)
	etag string // "" for bronzeObject's own; another one rewrites the object
}

// hwObject is step's object: bronzeObject's, with its table from its key, and another ETag or
// bytes when step asks for them.
func hwObject(t *testing.T, step hwLoad) warehouse.Object {
	t.Helper()
	obj := bronzeObject(t, step.key, max(step.rows, 0))
	obj.Table = strings.Split(step.key, "/")[1]
	fetch := obj.Fetch
	switch {
	case step.rows < 0:
		obj.Fetch = func(_ context.Context, w io.Writer) (string, error) {
			_, err := io.WriteString(w, "not parquet")
			return "etag-bad", err
		}
	case step.etag != "":
		obj.ETag = step.etag
		obj.Fetch = func(ctx context.Context, w io.Writer) (string, error) {
			_, err := fetch(ctx, w)
			return step.etag, err
		}
	}
	return obj
}

// ledgerNewest is what the high waters must equal: the greatest key of each table in the
// ledger, read from the ledger itself (the lookup before the high-water relation).
func ledgerNewest(t *testing.T, wh *duckdb.Warehouse) map[string]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(query(t, wh, duckdb.LedgerNewestQuery))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range recs[1:] {
		out[r[0]] = r[1]
	}
	return out
}

// The high water of a table is the greatest key its ledger holds, whatever the order of the
// loads: an older object loaded after a newer one, a duplicate or a rewrite of an older one
// never lowers it, a failed load (rolled back) never moves it, and it survives a reopen.
func TestHighWaters(t *testing.T) {
	const (
		a1 = "bronze/accounts/dt=2026-11-24/fin.public.accounts-0-0-9.parquet"
		a2 = "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-19.parquet"
		a3 = "bronze/accounts/dt=2026-11-25/fin.public.accounts-1-0-4.parquet"
		t1 = "bronze/transactions/dt=2026-11-23/fin.public.transactions-0-0-9.parquet"
	)
	for _, tc := range []struct {
		name  string
		loads []hwLoad
		want  map[string]string
	}{
		{"none", nil, map[string]string{}},
		{"in order", []hwLoad{{key: a1, rows: 2}, {key: a2, rows: 2}, {key: a3, rows: 1}},
			map[string]string{"bronze/accounts/": a3}},
		{"out of order", []hwLoad{{key: a3, rows: 1}, {key: a1, rows: 2}, {key: a2, rows: 2}},
			map[string]string{"bronze/accounts/": a3}},
		{"duplicate", []hwLoad{{key: a2, rows: 2}, {key: a1, rows: 2}, {key: a1, rows: 2}, {key: a2, rows: 2}},
			map[string]string{"bronze/accounts/": a2}},
		{"an older object rewritten", []hwLoad{{key: a1, rows: 2}, {key: a2, rows: 2}, {key: a1, rows: 3, etag: "rewritten"}},
			map[string]string{"bronze/accounts/": a2}},
		{"failed loads", []hwLoad{{key: a1, rows: 2}, {key: a2, rows: 0}, {key: a3, rows: -1}},
			map[string]string{"bronze/accounts/": a1}},
		{"a failed first load", []hwLoad{{key: a2, rows: 0}}, map[string]string{}},
		{"tables apart", []hwLoad{{key: t1, rows: 1}, {key: a1, rows: 1}},
			map[string]string{"bronze/accounts/": a1, "bronze/transactions/": t1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "raw_store.duckdb")
			wh, err := duckdb.Open(ctx, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { wh.Close() }()
			for _, l := range tc.loads {
				_, err := wh.Load(ctx, hwObject(t, l))
				if failing := l.rows <= 0; failing != (err != nil) {
					t.Fatalf("load %s (%d rows): error %v", l.key, l.rows, err)
				}
				if l.rows == 0 && !errors.Is(err, warehouse.ErrNothingLoaded) || l.rows < 0 && !errors.Is(err, warehouse.ErrBadObject) {
					t.Fatalf("load %s: %v, not the failure the step makes", l.key, err)
				}
			}
			for _, when := range []string{"after the loads", "after a reopen"} {
				got, err := wh.HighWaters(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(got, tc.want) {
					t.Fatalf("%s: high waters %v, want %v", when, got, tc.want)
				}
				if ledger := ledgerNewest(t, wh); !maps.Equal(got, ledger) {
					t.Fatalf("%s: high waters %v, but the ledger's newest keys are %v", when, got, ledger)
				}
				wh.Close()
				if wh, err = duckdb.Open(ctx, path, nil); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// The high waters are read from the ledger when the warehouse opens: a RAW file written by
// another process (an earlier stack, `fin load`) or before the high waters existed starts from
// its ledger's newest keys, not from nothing (with nothing, the catch-up would list each table
// whole until its next load, then start from that load's date).
func TestHighWatersFromTheLedgerAtOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "raw_store.duckdb")
	wh, err := duckdb.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := "bronze/accounts/dt=2026-11-24/fin.public.accounts-0-0-9.parquet"
	newest := "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-19.parquet"
	for _, k := range []string{newest, old} {
		if _, err := wh.Load(ctx, hwObject(t, hwLoad{key: k, rows: 1})); err != nil {
			t.Fatal(err)
		}
	}
	wh.Close()
	// Another process's load, known only to the ledger.
	tx := "bronze/transactions/dt=2026-11-20/fin.public.transactions-0-0-9.parquet"
	if err := inOtherProcess(t, path, "INSERT INTO raw._load_ledger VALUES ('"+tx+"', 'etag', 'transactions', 1, now())"); err != nil {
		t.Fatal(err)
	}
	if wh, err = duckdb.Open(ctx, path, nil); err != nil {
		t.Fatal(err)
	}
	got, err := wh.HighWaters(ctx)
	wh.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"bronze/accounts/": newest, "bronze/transactions/": tx}; !maps.Equal(got, want) {
		t.Fatalf("high waters of a RAW file opened again: %v, want its ledger's newest keys %v", got, want)
	}
}
