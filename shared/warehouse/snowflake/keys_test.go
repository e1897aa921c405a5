package snowflake_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze/bronzetest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflake"
)

// Hostile strings, escaped by snowflake's literal, read back unchanged through the server's
// parser, and a COPY of an object under a hostile name stores that name exactly. (NUL is left
// out: fakesnow's DuckDB refuses it in any string, escaped or not.)
func TestSnowflakeLiteralsOverTheWire(t *testing.T) {
	root := t.TempDir()
	wh := openFake(t, fakesnow(t), root)
	ctx := context.Background()
	for _, s := range []string{
		"it's", `back\slash`, `ends in a backslash\`, `\'); DROP TABLE RAW.ACCOUNTS; --`,
		"x'); DROP TABLE RAW.ACCOUNTS; --", "$$ dollar $$", "new\nline\r\n\ttab", "bell\x07del\x7f",
		"ünïcødé ☃ 𝄞", `''''\\\\''`, "",
	} {
		lit, err := snowflake.Literal(s)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := wh.DB().QueryRowContext(ctx, "SELECT "+lit).Scan(&got); err != nil {
			t.Fatalf("SELECT %s: %v", lit, err)
		}
		if got != s {
			t.Errorf("SELECT %s = %q, want %q", lit, got, s)
		}
	}
	if got := queryString(t, wh, "SELECT COUNT(*) FROM RAW.ACCOUNTS"); got != "0" {
		t.Fatalf("RAW.ACCOUNTS: %s rows", got)
	}

	hostile := "bronze/accounts/dt=2026-11-25/it's a \\ $$ key é☃\n.parquet"
	if _, err := bronze.ParseKey(hostile); err == nil {
		t.Fatalf("the grammar accepts %q", hostile)
	}
	body, err := bronzetest.Encode(bronzetest.Records("accounts", 0, 5, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := bronzetest.PutBytes(root, "lake", hostile, body); err != nil {
		t.Fatal(err)
	}
	n, _, err := wh.CopyUnchecked(ctx, warehouse.Object{Key: hostile, Table: "accounts"}, true)
	if err != nil || n != 5 {
		t.Fatalf("COPY of %q: %d rows, %v; want 5", hostile, n, err)
	}
	if got := queryString(t, wh, "SELECT LISTAGG(DISTINCT _OBJECT_KEY) || '|' || COUNT(*) FROM RAW.ACCOUNTS"); got != hostile+"|5" {
		t.Fatalf("RAW.ACCOUNTS keys|rows = %q, want %q", got, hostile+"|5")
	}
	// Through the loader the same key is refused before any SQL.
	err = loader.NewHandler(wh, loader.DirObjects(root)).Handle(ctx, created("lake", hostile))
	var ke *bronze.KeyError
	if !errors.As(err, &ke) || ke.Part != "file name" {
		t.Fatalf("loading %q: %v; want a bad key naming the file name", hostile, err)
	}
}

// An object that exists but gives no rows (COPY loads 0, then, Snowflake's load metadata saying
// the file is in, COPY FORCE loads 0 too and RAW holds none of its rows) is tried again, then
// fails: counted, logged and returned, with no ledger row, so the object is never taken as loaded.
func TestSnowflakeCopyOfNothingIsAFailureNotALedgerRow(t *testing.T) {
	root := t.TempDir()
	wh := openFake(t, fakesnow(t), root)
	ctx := context.Background()
	empty, err := bronzetest.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	key := bronzetest.KeyAt("accounts", 0, 4)
	if err := bronzetest.PutBytes(root, "lake", key, empty); err != nil {
		t.Fatal(err)
	}
	// Snowflake's load metadata remembers the file: the loader's COPY is skipped, its FORCE runs.
	obj := warehouse.Object{Key: key, Table: "accounts"}
	if n, loaded, err := wh.CopyUnchecked(ctx, obj, false); err != nil || n != 0 || !loaded {
		t.Fatalf("first COPY of the empty object: %d rows, loaded %v, %v", n, loaded, err)
	}
	if _, loaded, err := wh.CopyUnchecked(ctx, obj, false); err != nil || loaded {
		t.Fatalf("second COPY of the empty object: loaded %v, %v; want it skipped as loaded before", loaded, err)
	}
	counting := &countingWarehouse{Warehouse: wh}
	var logs bytes.Buffer
	h := loader.NewHandler(counting, loader.DirObjects(root), loader.WithRetry(3, 10*time.Millisecond),
		loader.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	err = h.Handle(ctx, created("lake", key))
	if !errors.Is(err, warehouse.ErrNothingLoaded) || !strings.Contains(err.Error(), key) {
		t.Fatalf("loading an object that gives no rows: %v; want ErrNothingLoaded naming %s", err, key)
	}
	if counting.loads != 3 {
		t.Errorf("Load called %d times, want 3 (tried again twice)", counting.loads)
	}
	if m := h.Metrics(); m.Failures[loader.ReasonNothingLoaded] != 1 || m.FailureCount() != 1 || m.ObjectsLoaded != 0 {
		t.Errorf("metrics %+v; want one nothing_loaded failure and no load", m)
	}
	if !strings.Contains(logs.String(), "object not loaded") || !strings.Contains(logs.String(), "reason=nothing_loaded") {
		t.Errorf("log does not name the failure:\n%s", logs.String())
	}
	if got := queryString(t, wh, "SELECT COUNT(*) FROM RAW._LOAD_LEDGER"); got != "0" {
		t.Fatalf("the ledger has %s rows, want none: a 0-row entry would mark the object loaded for good", got)
	}
	// Once the object holds its rows (the landing rewrote it), the event's retry loads it.
	if _, err := bronzetest.Put(root, "lake", "accounts", bronzetest.Records("accounts", 0, 5, nil)); err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(ctx, created("lake", key)); err != nil {
		t.Fatalf("the rewritten object: %v", err)
	}
	if got := queryString(t, wh, "SELECT COUNT(*) || '/' || (SELECT LISTAGG(ROW_COUNT, ',') FROM RAW._LOAD_LEDGER) FROM RAW.ACCOUNTS"); got != "5/5" {
		t.Fatalf("RAW rows/ledger row counts = %s, want 5/5", got)
	}
}

type countingWarehouse struct {
	*snowflake.Warehouse
	loads int
}

func (c *countingWarehouse) Load(ctx context.Context, obj warehouse.Object) (warehouse.Result, error) {
	c.loads++
	return c.Warehouse.Load(ctx, obj)
}
