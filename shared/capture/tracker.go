package capture

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txn is one source transaction on its way to Kafka.
type txn struct {
	commit    time.Time
	endLSN    pglogrepl.LSN
	pending   atomic.Int64 // events produced and not yet acknowledged
	committed atomic.Bool  // its Commit message has been read (endLSN is set before)
	promise   func(*kgo.Record, error)
}

// tracker decides how far Postgres may forget the WAL: to the end LSN of the newest transaction
// whose events, and those of every transaction before it, Kafka has acknowledged. Transactions
// complete out of order across partitions; the position only moves over a complete prefix.
type tracker struct {
	mu      sync.Mutex
	queue   []*txn
	flushed pglogrepl.LSN
	err     error
}

func (t *tracker) begin(commit time.Time) *txn {
	x := &txn{commit: commit}
	// One callback per transaction, not per event.
	x.promise = func(r *kgo.Record, err error) {
		t.acked(x, err)
		if err == nil {
			recycle(r)
		}
	}
	t.mu.Lock()
	t.queue = append(t.queue, x)
	t.mu.Unlock()
	return x
}

// produced counts one more event of x in flight. Per-event paths take no lock: the stream
// produces at the rate Postgres decodes.
func (t *tracker) produced(x *txn) { x.pending.Add(1) }

// acked records Kafka's answer for one event of x.
func (t *tracker) acked(x *txn, err error) {
	if err != nil {
		t.mu.Lock()
		if t.err == nil {
			t.err = err
		}
		t.mu.Unlock()
		return
	}
	if x.pending.Add(-1) == 0 && x.committed.Load() {
		t.mu.Lock()
		t.advance()
		t.mu.Unlock()
	}
}

func (t *tracker) commit(x *txn, end pglogrepl.LSN) {
	x.endLSN = end
	x.committed.Store(true)
	t.mu.Lock()
	t.advance()
	t.mu.Unlock()
}

// advance pops the complete prefix; callers hold mu.
func (t *tracker) advance() {
	n := 0
	for n < len(t.queue) && t.queue[n].committed.Load() && t.queue[n].pending.Load() == 0 {
		t.flushed = t.queue[n].endLSN
		n++
	}
	if n > 0 {
		clear(t.queue[:n])
		t.queue = t.queue[n:]
	}
}

// state returns the position to confirm, the commit time of the oldest transaction not yet
// delivered (zero when none), and the first delivery error.
func (t *tracker) state() (pglogrepl.LSN, time.Time, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var oldest time.Time
	if len(t.queue) > 0 {
		oldest = t.queue[0].commit
	}
	return t.flushed, oldest, t.err
}
