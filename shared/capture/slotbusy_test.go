package capture_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
)

// holdSlot consumes slot on a replication connection of its own, as a capture stopped a moment
// ago whose walsender has not noticed yet, and returns what lets it go.
func holdSlot(t *testing.T, h *harness) (release func()) {
	t.Helper()
	u, err := url.Parse(h.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("replication", "database")
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgconn.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("replication connection: %v", err)
	}
	args := []string{"proto_version '1'", "publication_names 'fin_cdc'"}
	if err := pglogrepl.StartReplication(ctx, conn, h.cfg.Slot, 0, pglogrepl.StartReplicationOptions{PluginArgs: args}); err != nil {
		t.Fatalf("hold slot %s: %v", h.cfg.Slot, err)
	}
	return func() { conn.Close(context.Background()) }
}

// A capture started while its slot is still active for the previous consumer (SQLSTATE 55006:
// a restart right after a stop or a kill) waits for it to let go, for a bounded time, rather than
// failing: TestLakeThatMissedSharedSlotChangesIsSnapshottedAgain failed so in CI.
func TestStartWaitsForTheSlotsPreviousConsumer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		busyFor time.Duration
		wantErr bool
	}{
		{"waits while the slot is held", time.Minute, false},
		{"fails once the bound has passed", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.exec(`INSERT INTO customers (customer_id, first_name, last_name, email) VALUES ($1, 'Ann', 'Lee', 'ann@example.com')`, ann)
			stop := h.start(nil)
			h.consume("fin.public.customers", 1) // the snapshot's read
			h.exec(`UPDATE customers SET first_name = 'Anne' WHERE customer_id = $1`, ann)
			h.consume("fin.public.customers", 2) // streamed: the slot confirms past the snapshot
			if err := stop(); err != nil {
				t.Fatalf("first run: %v", err)
			}
			// Wait for the stopped capture's walsender to let go before holding the slot ourselves.
			var release func()
			pat := newPatience(t, "the slot free after the first run", 30*time.Second)
			for release == nil {
				var active bool
				if err := h.db.Pool.QueryRow(context.Background(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", h.cfg.Slot).Scan(&active); err != nil {
					t.Fatal(err)
				}
				if !active {
					release = holdSlot(t, h)
					break
				}
				if pat.expired() {
					t.Fatalf("%s: not within %s", pat.what, pat)
				}
				time.Sleep(50 * time.Millisecond)
			}
			defer capture.SetSlotBusyFor(tc.busyFor)()
			releasedAt := time.Now().Add(2 * time.Second)
			go func() {
				time.Sleep(time.Until(releasedAt))
				release()
			}()
			m := &capture.Metrics{}
			h.cfg.Metrics = m
			stop = h.start(nil)
			if tc.wantErr {
				pat := newPatience(t, "the capture's refusal", time.Minute)
				for h.ended() == nil {
					if pat.expired() {
						t.Fatalf("%s: not within %s", pat.what, pat)
					}
					time.Sleep(50 * time.Millisecond)
				}
				var pgErr *pgconn.PgError
				if err := *h.ended(); !errors.As(err, &pgErr) || pgErr.Code != "55006" {
					t.Fatalf("capture ended with %v, want the slot's refusal (55006)", err)
				}
				return
			}
			h.exec(`UPDATE customers SET first_name = 'Anna' WHERE customer_id = $1`, ann)
			got := h.consume("fin.public.customers", 3) // the first run's two events, then the update
			if last := got[len(got)-1]; last.op() != "u" {
				t.Fatalf("last event %s, want the update", last.raw)
			}
			if time.Now().Before(releasedAt) {
				t.Fatalf("streamed before the holder let the slot go")
			}
			if p := h.ended(); p != nil {
				t.Fatalf("capture ended: %v", *p)
			}
			if err := stop(); err != nil {
				t.Fatalf("second run: %v", err)
			}
		})
	}
}
