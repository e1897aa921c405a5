package reconcile_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/reconcile"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// TestPassChangedJudgesAsFullPasses runs passes of what changed (a sweep of 2 keys a pass) beside
// full passes on the same Postgres and warehouse, pass for pass: a change on either side is
// judged alike in the same pass (lag, then lost once delivered, then agree once loaded), and a
// loss that no change shows (a delete the warehouse never got) is found by the sweep within one
// round of it.
func TestPassChangedJudgesAsFullPasses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+pgtest.SlotPatience) // the slot may wait for the cluster
	defer cancel()
	db := pgtest.New(t)
	exec := customers(ctx, t, db, 10)
	wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "raw_store.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	lsn := int64(1000)
	load := func(where string) {
		t.Helper()
		loadRows(ctx, t, db.Pool, wh, "customers", "customer_id", "u", where, &lsn)
	}
	load("true")

	slot := "changed_" + db.Name
	pgtest.CreateSlot(t, db, slot)
	// Each pass a minute later: a pass the slot has crossed is the next one's reference.
	clock := func() func() time.Time {
		at := time.Now()
		return func() time.Time { at = at.Add(time.Minute); return at }
	}
	opt := reconcile.Options{Slot: slot, Grace: time.Nanosecond, ClockMargin: time.Millisecond, Dir: t.TempDir(), Sweep: 2}
	opt.Now = clock()
	changed := reconcile.New(db.Pool, wh, opt)
	defer changed.Close()
	opt.Now, opt.Dir = clock(), t.TempDir()
	full := reconcile.New(db.Pool, wh, opt)
	defer full.Close()

	// verdicts is each key's verdict, "customers <id> lost".
	verdicts := func(rep reconcile.Report) []string {
		var out []string
		for verdict, lines := range map[string][]string{"lost": rep.Lost, "lag": rep.Lag, "differ": rep.Differences} {
			for _, l := range lines {
				f := strings.Fields(l)
				out = append(out, f[0]+" "+strings.TrimSuffix(f[1], ":")+" "+verdict)
			}
		}
		slices.Sort(out)
		return out
	}
	// both makes a pass of each kind and returns their verdicts.
	both := func() (got, want []string, rep reconcile.Report) {
		t.Helper()
		rep, err := changed.PassChanged(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := full.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return verdicts(rep), verdicts(ref), rep
	}
	step := func(what string, want ...string) reconcile.Report {
		t.Helper()
		got, fullGot, rep := both()
		if !slices.Equal(got, want) || !slices.Equal(fullGot, want) {
			t.Fatalf("%s: pass of what changed %q, full pass %q, want %q", what, got, fullGot, want)
		}
		return rep
	}

	if rep := step("first pass, all of it"); rep.Partial || len(rep.Tables) == 0 || rep.Tables[0].Postgres != 10 {
		t.Fatalf("the first pass of what changed reads every key: %+v", rep)
	}
	if rep := step("nothing changed"); !rep.Partial || rep.Tables != nil {
		t.Fatalf("later passes compare what changed: %+v", rep)
	}
	// until makes passes, the capture confirming everything before each, until both judge want;
	// pass for pass they must judge alike.
	until := func(what string, want ...string) {
		t.Helper()
		for pass := 1; ; pass++ {
			pgtest.ConfirmSlot(ctx, t, db.Pool, slot)
			got, fullGot, _ := both()
			if !slices.Equal(got, fullGot) {
				t.Fatalf("%s, pass %d: pass of what changed %q, full pass %q", what, pass, got, fullGot)
			}
			if slices.Equal(got, want) {
				return
			}
			if pass == 6 {
				t.Fatalf("%s: after %d passes both judge %q, want %q", what, pass, got, want)
			}
		}
	}
	exec(`UPDATE customers SET email = 'c9.new@example.com' WHERE customer_id = $1`, id(9))
	step("changed in Postgres, not delivered", "customers "+id(9)+" lag")
	until("delivered a grace ago, never loaded", "customers "+id(9)+" lost")
	load("customer_id = '" + id(9) + "'")
	step("loaded at last", []string{}...)

	// A delete the warehouse never gets: no change on either side shows it, the sweep does.
	exec(`DELETE FROM customers WHERE customer_id = $1`, id(4))
	lost := "customers " + id(4) + " lost"
	for pass := 1; ; pass++ {
		pgtest.ConfirmSlot(ctx, t, db.Pool, slot)
		got, want, _ := both()
		if slices.Contains(want, lost) && slices.Equal(got, want) {
			break
		}
		// 10 keys, 2 a pass: a round of the sweep is 5 passes, then a reference that compared it.
		if pass > 10 {
			t.Fatalf("after %d passes the pass of what changed judges %q, the full pass %q", pass, got, want)
		}
	}
}
