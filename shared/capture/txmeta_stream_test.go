package capture_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
)

// holdEnds acknowledges every record at once but a transaction's END, which it keeps until
// release: Kafka has the transaction's events, not yet its END.
type holdEnds struct {
	mu       sync.Mutex
	held     []func()
	produced []string // the transaction metadata records, in order
	released bool
}

func (p *holdEnds) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Topic == "fin.transaction_metadata" {
		p.produced = append(p.produced, string(r.Value))
		if !p.released && bytes.HasPrefix(r.Value, []byte(`{"status":"END"`)) {
			p.held = append(p.held, func() { promise(r, nil) })
			return
		}
	}
	promise(r, nil)
}

func (p *holdEnds) release() {
	p.mu.Lock()
	held := p.held
	p.held, p.released = nil, true
	p.mu.Unlock()
	for _, ack := range held {
		ack()
	}
}

func (p *holdEnds) records() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.produced...)
}

// A transaction's END is one of its events: the slot is not confirmed past the transaction while
// Kafka has not acknowledged its END, so a consumer never misses the END of a transaction whose
// events it has (the warehouse could not tell that transaction whole), and a restart re-sends it.
func TestSlotWaitsForTheTransactionsEnd(t *testing.T) {
	h := newHarness(t)
	metrics := &capture.Metrics{}
	h.cfg.Metrics = metrics
	h.exec(`INSERT INTO customers (customer_id, first_name, last_name, email) VALUES ($1, 'Ann', 'Lee', 'ann@example.com')`, ann)
	p := &holdEnds{}
	stop := h.start(p)
	// The waits give up after a minute of the capture's own time without progress (time its
	// slot's creation waits for transactions elsewhere on the cluster is not its own), or ten in
	// all: a loaded machine slows the capture, a neighbour's open transaction holds it.
	progress := func() string {
		return fmt.Sprintf("%d events, confirmed %d", metrics.Events.Load(), metrics.ConfirmedLSN.Load())
	}
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		waitPatiently(t, newPatience(t, what, time.Minute).following(progress, 10*time.Minute), ok, nil)
	}
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("capture: %v", err)
		}
	}()
	waitUntil("the snapshot's event", func() bool { return metrics.Events.Load() >= 1 })

	h.exec(`UPDATE customers SET city = 'Bern' WHERE customer_id = $1`, ann)
	var s string
	if err := h.db.Pool.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	target, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil("the update's END", func() bool {
		r := p.records()
		return len(r) == 2 && bytes.HasPrefix([]byte(r[1]), []byte(`{"status":"END"`))
	})
	// Several status rounds and heartbeats (1 s) pass while the END is unacknowledged.
	time.Sleep(3 * time.Second)
	if got := h.slotLSN(); got >= target {
		t.Fatalf("slot confirmed %s, past the transaction ending by %s, before its END was acknowledged", got, target)
	}
	p.release()
	waitUntil("the slot past the transaction once its END is acknowledged", func() bool { return h.slotLSN() >= target })
}
