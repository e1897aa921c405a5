package stack

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/reconcile"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// TestStatusShowsReconcileVerdict: rows the slot has confirmed that the warehouse never got (a
// lake lost while the slot lived on) turn the console's reconcile component from lag to lost.
func TestStatusShowsReconcileVerdict(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+pgtest.SlotPatience) // the slot may wait for the cluster
	defer cancel()
	db := pgtest.New(t)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO customers (first_name, last_name, email) VALUES ('Ada', 'Test', 'ada@example.com')`); err != nil {
		t.Fatal(err)
	}
	wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "raw_store.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	slot := "status_" + db.Name
	pgtest.CreateSlot(t, db, slot)

	c := newStatusCache(&Stack{cfg: Config{Pool: db.Pool, Slot: slot}, wh: wh, log: slog.New(slog.DiscardHandler)})
	r := reconcile.New(db.Pool, wh, reconcile.Options{Slot: slot, Grace: time.Nanosecond})
	for i, want := range []struct {
		verdict string
		ok      bool
	}{{"lag", true}, {"lag", true}, {"lost", false}} {
		if i == 1 { // the capture confirms past what the first pass saw
			pgtest.ConfirmSlot(ctx, t, db.Pool, slot)
		}
		c.reconcileOnce(ctx, r)
		rec, comp := c.reconcileComponent()
		if rec == nil || rec.Verdict != want.verdict || comp.OK != want.ok || !strings.HasPrefix(comp.Detail, want.verdict+": ") {
			t.Fatalf("pass %d: %+v %+v, want verdict %s (ok %v)", i+1, rec, comp, want.verdict, want.ok)
		}
	}
	rec, _ := c.reconcileComponent()
	if rec.Lost != 1 || len(rec.Examples) != 1 || !strings.Contains(rec.Summary, "fin snapshot") {
		t.Errorf("lost verdict %+v: want the one customer, an example and the remedy", rec)
	}
}
