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
)

// An idle session that changed a row of a table and never ends its transaction stalls that
// table's snapshot (its chunks stop before the row). The capture must say so in its log after a
// few seconds: the table, the key range that waits, and the backend pid to end. Then, once the
// transaction ends, the snapshot completes.
func TestHeldRowIsLoggedWithItsBackend(t *testing.T) {
	const key = "grp = 3 AND id = 101" // in the middle of items, past the first chunks
	tests := []struct {
		name   string
		locker string // run first in a third session's open transaction: the row's xmax becomes a MultiXactId
	}{
		{"update left open", ""},
		{"update left open beside a key-share locker", "SELECT v FROM items WHERE " + key + " FOR KEY SHARE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			logs := &logBuffer{}
			metrics, stop := h.startItems(400, newManifests(), logs)

			ctx := context.Background()
			var ends []*pgx.Conn
			if tt.locker != "" {
				locker, _ := h.openTx(tt.locker)
				ends = append(ends, locker)
			}
			held, pid := h.openTx("UPDATE items SET v = 1 WHERE " + key)
			ends = append(ends, held)
			began := time.Now()
			h.exec(snapshotItems)
			line := regexp.MustCompile(`level=WARN msg="incremental snapshot waits for a row an open transaction holds[^\n]*`)
			var found string
			waitFor(t, "the held row logged", 30*time.Second, func() bool {
				found = line.FindString(logs.String())
				return found != ""
			})
			t.Log(found)
			for _, want := range []string{"table=public.items", fmt.Sprintf("pid=%d ", pid), `state=\"idle in transaction\"`, "UPDATE items SET v = 1"} {
				if !strings.Contains(found, want) {
					t.Errorf("the log line lacks %s: %s", want, found)
				}
			}
			if waited := time.Since(began); waited < 5*time.Second {
				t.Errorf("logged after %s: a row held for a moment is no news", waited)
			}
			if metrics.SnapshotsCompleted.Load() != 0 {
				t.Fatal("the snapshot completed past a row an open transaction holds")
			}
			for _, conn := range ends {
				if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "snapshot completed", 30*time.Second, func() bool { return metrics.SnapshotsCompleted.Load() == 1 })
			if n := len(line.FindAllString(logs.String(), -1)); n != 1 {
				t.Errorf("logged %d times within the first 30 s of the wait, want once", n)
			}
			if err := stop(); err != nil {
				t.Fatalf("capture: %v", err)
			}
		})
	}
}

// openTx begins a transaction on a connection of its own, runs stmts in it and leaves it open; it
// returns the connection and its backend's pid.
func (h *harness) openTx(stmts ...string) (*pgx.Conn, int) {
	h.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, h.db.URL)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close(ctx) })
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		h.t.Fatal(err)
	}
	for _, s := range append([]string{"BEGIN"}, stmts...) {
		if _, err := conn.Exec(ctx, s); err != nil {
			h.t.Fatalf("%s: %v", s, err)
		}
	}
	return conn, pid
}

// snapshotItems signals an incremental snapshot of items.
const snapshotItems = `INSERT INTO debezium_signal (id, type, data) VALUES ('sig-1', 'execute-snapshot', '{"data-collections": ["public.items"]}')`

// startItems starts a capture of n items read in chunks of 16, writing its manifests and
// windows to lake and its log to logs (when not nil), and waits until it streams; it returns the
// capture's metrics and its stop.
func (h *harness) startItems(n int, lake *memManifests, logs *logBuffer) (*capture.Metrics, func() error) {
	h.t.Helper()
	h.withItems(n)
	metrics := &capture.Metrics{}
	h.cfg.Metrics, h.cfg.ChunkSize, h.cfg.Manifest = metrics, 16, lake
	if logs != nil {
		h.cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	stop := h.start(nil)
	h.consume("__debezium-heartbeat.fin", 1) // streaming
	return metrics, stop
}
