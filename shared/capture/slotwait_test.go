package capture_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// A logical slot is made only once every transaction that held a transaction id on the cluster
// when its creation began has ended, in any database. A transaction left open in another
// database holds the capture at its start with nothing in its own database to show for it: the
// capture must say what it waits for (Metrics.WaitingFor at once, its log after a few seconds),
// naming the backend and its database, and go on when that transaction ends.
func TestSlotCreationSaysWhatItWaitsFor(t *testing.T) {
	h := newHarness(t)
	other := pgtest.New(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, other.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid() FROM txid_current()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	metrics := &capture.Metrics{}
	h.cfg.Metrics, h.cfg.Logger = metrics, slog.New(slog.NewTextHandler(logs, nil))
	began := time.Now()
	stop := h.start(nil)

	// Other transactions on the cluster (other tests') may be waited for before this one.
	ours := fmt.Sprintf("pid=%d database=%q", pid, other.Name)
	waitUntil := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s; waiting for %v; log:\n%s", what, d, metrics.WaitingFor.Load(), logs.String())
			}
		}
	}
	waitUntil("the slot's wait in the metrics", 30*time.Second, func() bool { return metrics.WaitingFor.Load() != nil })
	waitUntil("the open transaction of the other database in the metrics", clusterPatience, func() bool {
		w := metrics.WaitingFor.Load()
		return w != nil && strings.Contains(*w, ours)
	})
	line := regexp.MustCompile(`level=WARN msg="creating the replication slot waits for transactions open on the cluster[^\n]*`)
	var found string
	waitUntil("the wait logged with the open transaction's backend", clusterPatience, func() bool {
		for _, l := range line.FindAllString(logs.String(), -1) {
			if strings.Contains(l, fmt.Sprintf("pid=%d ", pid)) && strings.Contains(l, other.Name) {
				found = l
				return true
			}
		}
		return false
	})
	t.Log(found)
	if waited := time.Since(began); waited < 5*time.Second {
		t.Errorf("logged after %s: a wait of a moment is no news", waited)
	}
	if metrics.ConfirmedLSN.Load() != 0 {
		t.Fatal("the capture streams while its slot's creation waits")
	}
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	h.consume("__debezium-heartbeat.fin", 1) // streaming
	if w := metrics.WaitingFor.Load(); w != nil {
		t.Errorf("still waiting for %s once the slot exists", *w)
	}
	if err := stop(); err != nil {
		t.Fatalf("capture: %v", err)
	}
}
