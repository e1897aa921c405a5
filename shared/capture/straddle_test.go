package capture_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// A transaction that changed (or locked) a row before a chunk's read and commits after the
// chunk's window closed: the read sees the old row, and the streamed change, which comes after
// the window, carries the position of its change record, older than the window. Ordered by
// position (as RAW, the history and reconcile order events), the chunk's old row would then
// come last and stay current. Each case holds the transaction open on a second connection
// across whole windows (the snapshot's chunks go on closing meanwhile), then ends it, and the
// events ordered by position must end in the table's rows, as must the topic replayed in order.
func TestTransactionOpenAcrossAChunkWindow(t *testing.T) {
	const key = "grp = 0 AND id = 7" // the first key of items, in the first chunk
	tests := []struct {
		name string
		hold []string // statements run in the held transaction, after a locker's
		// locker, when set, runs first in a transaction of a third connection (held too): two
		// lockers of a row make its xmax a MultiXactId.
		locker string
		end    string
		// whole: the transaction stays open until the table's snapshot is recorded (a held row
		// would keep it from completing).
		whole bool
	}{
		{"update committed after the window", []string{"UPDATE items SET v = 1 WHERE " + key}, "", "COMMIT", false},
		{"delete committed after the window", []string{"DELETE FROM items WHERE " + key}, "", "COMMIT", false},
		{"update rolled back", []string{"UPDATE items SET v = 1 WHERE " + key}, "", "ROLLBACK", false},
		{"row lock only, committed", []string{"SELECT v FROM items WHERE " + key + " FOR UPDATE"}, "", "COMMIT", false},
		{"update beside a key-share locker", []string{"UPDATE items SET v = 2 WHERE " + key},
			"SELECT v FROM items WHERE " + key + " FOR KEY SHARE", "COMMIT", false},
		{"insert committed after the window", []string{"INSERT INTO items VALUES (0, 3, 4)"}, "", "COMMIT", false},
		{"insert committed after the table's last window", []string{"INSERT INTO items VALUES (0, 3, 4)"}, "", "COMMIT", true},
		{"update of a row locked before by the same transaction", []string{
			"SELECT v FROM items WHERE " + key + " FOR SHARE", "UPDATE items SET v = 3 WHERE " + key}, "", "COMMIT", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			lake := newManifests()
			metrics, stop := h.startItems(200, lake, nil)

			ctx := context.Background()
			var locker *pgx.Conn
			if tt.locker != "" {
				locker, _ = h.openTx(tt.locker)
			}
			held, _ := h.openTx(tt.hold...)
			h.exec(snapshotItems)
			// The first chunk's window has closed (and more after it) while the transaction
			// that changed its first row is open.
			waitFor(t, "chunks emitted", 30*time.Second, func() bool {
				return metrics.SnapshotChunks.Load() >= 4 && (!tt.whole || metrics.SnapshotsCompleted.Load() == 1)
			})
			if _, err := held.Exec(ctx, tt.end); err != nil {
				t.Fatal(err)
			}
			if locker != nil {
				if _, err := locker.Exec(ctx, "COMMIT"); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "snapshot completed, its window written", 30*time.Second, func() bool {
				return metrics.SnapshotsCompleted.Load() == 1 && metrics.WindowsHeld.Load() == 0
			})
			want, evs := h.itemsDelivered()
			replaysToTable(t, evs, want)
			// Keys without an event inside a window of the table are taken as deleted before it.
			if got, _ := replayWindows(t, byPosition(evs), snapshotWindows(t, lake, "items")); !maps.Equal(got, want) {
				t.Errorf("the events ordered by source.lsn, with the snapshot windows, differ from the table: %s", diff(got, want))
			}
			k := `{"grp":0,"id":7}`
			if _, ok := want[k]; ok && tt.end == "ROLLBACK" && !slices.ContainsFunc(evs, func(e event) bool {
				return e.key == k && e.op() == "r" && e.source()["snapshot"] == "incremental"
			}) {
				t.Errorf("row %s unchanged, yet the incremental snapshot never read it", k)
			}
			if err := stop(); err != nil {
				t.Fatalf("capture: %v", err)
			}
		})
	}
}

// A transaction of another database of the cluster, open across a table's whole snapshot, is in
// every snapshot's xip but cannot have changed the table: the table's window must not open at the
// slot's restart_lsn for it, where it would end no key (TestLakeThatMissedSharedSlotChangesIsSnapshottedAgain
// failed so under load, other engineers' databases holding transactions open). One of this
// database still lowers it ("insert committed after the table's last window" above).
func TestTransactionOfAnotherDatabaseLeavesTheWindow(t *testing.T) {
	h := newHarness(t)
	logs := &logBuffer{}
	metrics, stop := h.startItems(200, newManifests(), logs)

	ctx := context.Background()
	other, err := pgx.Connect(ctx, pgtest.New(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	var xid string
	if _, err := other.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if err := other.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid); err != nil {
		t.Fatal(err)
	}
	h.exec(snapshotItems)
	waitFor(t, "snapshot completed, its window written", 30*time.Second, func() bool {
		return metrics.SnapshotsCompleted.Load() == 1 && metrics.WindowsHeld.Load() == 0
	})
	if _, err := other.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	if out := logs.String(); !strings.Contains(out, "snapshot window written beside the data") || strings.Contains(out, "restart_lsn") {
		t.Errorf("with transaction %s of another database open across the snapshot, the window opened at the slot's restart_lsn (or was not written):\n%s", xid, out)
	}
}

// itemsDelivered makes a last change of items and waits until it is delivered, and with it
// everything before it; it returns the table's rows and the topic's events.
func (h *harness) itemsDelivered() (map[string]string, []event) {
	h.t.Helper()
	h.exec("INSERT INTO items VALUES (6, 100000, 0)")
	want := h.items()
	var evs []event
	waitFor(h.t, "the last change delivered", 30*time.Second, func() bool {
		evs = h.drain("fin.public.items")
		return len(evs) > 0 && evs[len(evs)-1].key == `{"grp":6,"id":100000}`
	})
	return want, evs
}

// byPosition orders events as RAW does: by source.lsn, then in topic order.
func byPosition(evs []event) []event {
	out := slices.Clone(evs)
	slices.SortStableFunc(out, func(a, b event) int {
		lsn := func(e event) float64 {
			if e.v == nil {
				return -1 // a tombstone follows its delete in the topic; replay skips it
			}
			l, _ := e.source()["lsn"].(float64)
			return l
		}
		la, lb := lsn(a), lsn(b)
		switch {
		case la < lb:
			return -1
		case la > lb:
			return 1
		}
		return 0
	})
	return out
}

// diff names the keys whose rows differ.
func diff(got, want map[string]string) string {
	var out []string
	for k, w := range want {
		if g := got[k]; g != w {
			out = append(out, fmt.Sprintf("%s: %q, want %q", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s: %q, want none", k, g))
		}
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}
