package capture_test

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
)

// A transaction of the capture's database held open across a table's whole snapshot, that never
// changes the table before the window (or not at all), must not keep the window from ending a row
// deleted where the destination did not see it. The held transaction first writes elsewhere, so
// the slot's restart_lsn stays below it; then a row of items is updated and deleted, and the
// delete is taken out of the topic (as if another destination had consumed it). Replayed by
// position with the table's window, the topic must equal the table: the deleted row ends, and a
// row the held transaction inserted before the window and committed after it stays.
// A window opened at the slot's restart_lsn would end nothing
// (TestLakeThatMissedSharedSlotChangesIsSnapshottedAgain would then fail, 3 runs of 64 under load).
func TestTransactionHeldAcrossASnapshotLeavesItsWindowEndingDeletes(t *testing.T) {
	const gone = `{"grp":1,"id":8}`
	tests := []struct {
		name string
		// hold runs in the held transaction before the row is updated and deleted, then runs
		// after it; end ends it ("" when the hook ends it).
		hold, then []string
		end        string
		// afterHighWatermark ends the transaction as soon as the table's last high watermark is
		// written, before the stream meets it.
		afterHighWatermark bool
	}{
		{"unpublished table, committed", []string{"INSERT INTO aside VALUES (1)"}, nil, "COMMIT", false},
		{"unpublished table, rolled back", []string{"INSERT INTO aside VALUES (1)"}, nil, "ROLLBACK", false},
		{"another captured table, committed", []string{"INSERT INTO aside VALUES (1)"},
			[]string{"INSERT INTO customers (first_name, last_name, email) VALUES ('Ann', 'Lee', 'ann@example.com')"}, "COMMIT", false},
		{"insert into the table before the window, committed after it", []string{"INSERT INTO aside VALUES (1)"},
			[]string{"INSERT INTO items VALUES (0, 3, 4)"}, "COMMIT", false},
		{"ended right after the last high watermark", []string{"INSERT INTO aside VALUES (1)"}, nil, "COMMIT", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, lake, logs, metrics, stop := startAside(t)

			ctx := context.Background()
			held, _ := h.openTx(tt.hold...)
			h.exec(`UPDATE items SET v = v + 1 WHERE grp = 1 AND id = 8`)
			h.exec(`DELETE FROM items WHERE grp = 1 AND id = 8`)
			for _, s := range tt.then {
				if _, err := held.Exec(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			if tt.afterHighWatermark {
				defer capture.SetHighWatermarkHook(func(string) {
					if _, err := held.Exec(ctx, tt.end); err != nil {
						t.Errorf("%s: %v", tt.end, err)
					}
				})()
			}
			h.exec(snapshotItems)
			waitFor(t, "snapshot completed", 60*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() == 1 })
			if !tt.afterHighWatermark {
				if _, err := held.Exec(ctx, tt.end); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "window written", 30*time.Second, func() bool { return len(snapshotWindows(t, lake, "items")) > 0 })
			want, evs := h.itemsDelivered()
			if _, ok := want[gone]; ok {
				t.Fatalf("row %s not deleted", gone)
			}
			missed := slices.DeleteFunc(slices.Clone(evs), func(e event) bool { return e.key == gone && (e.v == nil || e.op() == "d") })
			if len(missed) == len(evs) {
				t.Fatalf("no delete of %s in the topic", gone)
			}
			got, ended := replayWindows(t, byPosition(missed), snapshotWindows(t, lake, "items"))
			if !maps.Equal(got, want) || ended == 0 {
				t.Errorf("the events ordered by source.lsn, without the delete of %s, with the windows (%d keys ended), differ from the table: %s\n%s",
					gone, ended, diff(got, want), logs)
			}
			if err := stop(); err != nil {
				t.Fatalf("capture: %v", err)
			}
		})
	}
}

// startAside starts a capture of 200 items, with its lake and log, on a database that also has
// aside, a table in no publication: a transaction held open writes there first, so that the
// slot's restart_lsn stays below it.
func startAside(t *testing.T) (*harness, *memManifests, *logBuffer, *capture.Metrics, func() error) {
	t.Helper()
	h := newHarness(t)
	h.exec(`CREATE TABLE aside (x int)`)
	lake := newManifests()
	logs := &logBuffer{}
	metrics, stop := h.startItems(200, lake, logs)
	return h, lake, logs, metrics, stop
}

// A capture stopped (or killed) while a table's window waits for a held transaction cannot tell
// the held state when it starts again: the manifest kept the window lowered to the slot's
// restart_lsn at its close, and the next start writes that, which still leaves alive a row the
// held transaction inserted before the window and committed while nothing captured.
func TestHeldWindowOfAStoppedCaptureIsWrittenAtStart(t *testing.T) {
	h, lake, logs, metrics, stop := startAside(t)
	held, _ := h.openTx("INSERT INTO aside VALUES (1)", "INSERT INTO items VALUES (0, 3, 4)")
	h.exec(snapshotItems)
	waitFor(t, "snapshot completed", 60*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() == 1 })
	if m := lake.manifest(t); len(m.HeldWindows) != 1 || len(snapshotWindows(t, lake, "items")) != 0 || metrics.WindowsHeld.Load() != 1 {
		t.Fatalf("with a transaction open across the snapshot: %d windows held in the manifest, %d written, %d held (want 1, 0, 1)\n%s",
			len(m.HeldWindows), len(snapshotWindows(t, lake, "items")), metrics.WindowsHeld.Load(), logs)
	}
	// The window waits for as many transactions as the server can hold open at once, not a
	// fixed 64 (a pool of a hundred sessions idle in a transaction passed that).
	var backends int
	if err := h.db.Pool.QueryRow(context.Background(), "SELECT current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int").Scan(&backends); err != nil {
		t.Fatal(err)
	}
	n := -1
	if bound := regexp.MustCompile(`snapshot window held until .* max_held=(\d+)`).FindStringSubmatch(logs.String()); bound != nil {
		n, _ = strconv.Atoi(bound[1])
	}
	if n < backends {
		t.Errorf("the held window logs the bound %d, want at least max_connections + max_prepared_transactions = %d\n%s", n, backends, logs)
	}
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	if _, err := held.Exec(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	h.cfg.Metrics = &capture.Metrics{}
	h.start(nil)
	waitFor(t, "window written", 30*time.Second, func() bool { return len(snapshotWindows(t, lake, "items")) > 0 })
	if m := lake.manifest(t); len(m.HeldWindows) != 0 {
		t.Errorf("the manifest still holds %d windows after they were written", len(m.HeldWindows))
	}
	want, evs := h.itemsDelivered()
	if got, _ := replayWindows(t, byPosition(evs), snapshotWindows(t, lake, "items")); !maps.Equal(got, want) {
		t.Errorf("the events ordered by source.lsn, with the windows, differ from the table: %s\n%s", diff(got, want), logs)
	}
}

// Past maxHeld transactions of the capture's database open across a table's snapshot, the window
// is not held: it is written at once, opening at the slot's restart_lsn read at its close, which
// Postgres keeps at or below the first change of every transaction still open. So a row one of
// them inserted before the window and commits after it has its event inside the window and stays.
// What the fallback gives up: a key whose last event the destination holds lies at or after that
// restart_lsn has an event inside the window, so a delete the destination missed there is not
// ended (a later snapshot's window ends it); one whose last event precedes it still is. The bound
// is set to 2 here (64 would cost 65 connections); at the bound the window is held and ends both
// deletes. Row A is updated and deleted before any transaction is held, and past the bound the
// test waits until the slot's restart_lsn has passed it; row B after every held transaction's
// first write (so restart_lsn stays below B); both deletes are taken out of the topic, as if
// another destination had consumed them.
func TestWindowPastMaxHeldOpensAtTheSlotsRestartLSN(t *testing.T) {
	const (
		bound                = 2
		rowA, rowB, inserted = `{"grp":1,"id":8}`, `{"grp":2,"id":9}`, `{"grp":0,"id":3}`
		fallbackLog          = "snapshot window opened at the slot's restart_lsn"
		heldLog              = "snapshot window held until the transactions open across the table's snapshot have ended"
	)
	tests := []struct {
		name     string
		held     int
		fallback bool
	}{
		{"as many as the bound: held", bound, false},
		{"one past the bound: opened at the slot's restart_lsn", bound + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(capture.SetMaxHeld(bound)) // registered first: restored after the capture stops
			h, lake, logs, metrics, stop := startAside(t)
			ctx := context.Background()

			h.exec(`UPDATE items SET v = v + 1 WHERE grp = 1 AND id = 8`)
			h.exec(`DELETE FROM items WHERE grp = 1 AND id = 8`)
			afterA := h.lsn("pg_current_wal_insert_lsn()")
			// Postgres moves restart_lsn only to a running-transactions record (logged every 15 s
			// while the log moves) the capture has confirmed, and no further than the last one
			// before the first change of the oldest transaction open: one after row A, before any
			// transaction is held (a transaction held elsewhere on the cluster meanwhile would
			// keep it back; on a busy cluster it takes two or three records, 30-45 s, hence the
			// generous limit). A held window opens above row A whatever restart_lsn is.
			if tt.fallback {
				waitFor(t, "the slot's restart_lsn past row A", 180*time.Second, func() bool {
					return h.lsn("(SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '"+h.cfg.Slot+"')") > afterA
				})
			}
			held := make([]*pgx.Conn, tt.held)
			for i := range held {
				held[i], _ = h.openTx("INSERT INTO aside VALUES (1)")
			}
			h.exec(`UPDATE items SET v = v + 1 WHERE grp = 2 AND id = 9`)
			h.exec(`DELETE FROM items WHERE grp = 2 AND id = 9`)
			if _, err := held[0].Exec(ctx, "INSERT INTO items VALUES (0, 3, 4)"); err != nil {
				t.Fatal(err)
			}
			h.exec(snapshotItems)
			waitFor(t, "snapshot completed", 60*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() == 1 })
			if tt.fallback {
				// Written at once: nothing waits for the held transactions.
				waitFor(t, "window written while the transactions are open, none held", 30*time.Second, func() bool {
					return len(snapshotWindows(t, lake, "items")) == 1 && metrics.WindowsHeld.Load() == 0
				})
			} else if n := len(snapshotWindows(t, lake, "items")); n != 0 || metrics.WindowsHeld.Load() != 1 {
				t.Fatalf("%d transactions held (the bound): %d windows written, %d held (want 0, 1)\n%s", tt.held, n, metrics.WindowsHeld.Load(), logs)
			}
			for _, c := range held {
				if _, err := c.Exec(ctx, "COMMIT"); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "window written, none held", 30*time.Second, func() bool {
				return len(snapshotWindows(t, lake, "items")) == 1 && metrics.WindowsHeld.Load() == 0
			})
			if m := lake.manifest(t); len(m.HeldWindows) != 0 {
				t.Errorf("the manifest still holds %d windows", len(m.HeldWindows))
			}

			out := logs.String()
			restart := regexp.MustCompile(`restart_lsn=([0-9A-F]+/[0-9A-F]+) held=(\d+)`).FindStringSubmatch(out)
			if strings.Contains(out, fallbackLog) != tt.fallback || tt.fallback != (restart != nil) || strings.Contains(out, heldLog) == tt.fallback {
				t.Fatalf("%d transactions held, bound %d: want fallback %v, the log says otherwise:\n%s", tt.held, bound, tt.fallback, out)
			}
			w := snapshotWindows(t, lake, "items")[0]
			if w.Offset <= int64(afterA) {
				t.Errorf("window opens at %s, not after row A's changes (before %s)", pglogrepl.LSN(w.Offset), afterA)
			}
			if tt.fallback {
				r, err := pglogrepl.ParseLSN(restart[1])
				if err != nil {
					t.Fatal(err)
				}
				if w.Offset > int64(r) {
					t.Errorf("window opens at %s, above the slot's restart_lsn %s at its close", pglogrepl.LSN(w.Offset), r)
				}
				if restart[2] != strconv.Itoa(tt.held) {
					t.Errorf("the log counts %s transactions held, want %d", restart[2], tt.held)
				}
			}

			want, evs := h.itemsDelivered()
			missed := slices.DeleteFunc(slices.Clone(evs), func(e event) bool {
				return (e.key == rowA || e.key == rowB) && (e.v == nil || e.op() == "d")
			})
			got, _ := replayWindows(t, byPosition(missed), snapshotWindows(t, lake, "items"))
			if _, ok := want[inserted]; !ok || got[inserted] != want[inserted] {
				t.Errorf("row %s, inserted by a held transaction before the window and committed after it: %q, want %q (ended by the window)\n%s",
					inserted, got[inserted], want[inserted], out)
			}
			if _, ok := got[rowA]; ok {
				t.Errorf("row %s, deleted before restart_lsn where the destination did not see it, not ended\n%s", rowA, out)
			}
			if _, ok := got[rowB]; ok == !tt.fallback {
				t.Errorf("row %s, deleted after the held transactions began where the destination did not see it: alive %v, want %v\n%s",
					rowB, ok, tt.fallback, out)
			}
			delete(got, rowB)
			if !maps.Equal(got, want) {
				t.Errorf("the events ordered by source.lsn, without the deletes, with the window, differ from the table: %s\n%s", diff(got, want), out)
			}
			if err := stop(); err != nil {
				t.Fatalf("capture: %v", err)
			}
		})
	}
}

// lsn evaluates expr, a pg_lsn, in the test database.
func (h *harness) lsn(expr string) pglogrepl.LSN {
	h.t.Helper()
	var s string
	if err := h.db.Pool.QueryRow(context.Background(), "SELECT coalesce(("+expr+")::text, '0/0')").Scan(&s); err != nil {
		h.t.Fatal(err)
	}
	l, err := pglogrepl.ParseLSN(s)
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}
