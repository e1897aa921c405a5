package capture

import (
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
)

// txn is one source transaction on its way to Kafka.
type txn struct {
	commit    time.Time
	endLSN    pglogrepl.LSN
	pending   int64 // events produced and not yet acknowledged
	committed bool  // its Commit message has been read (endLSN is known)
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
	t.mu.Lock()
	t.queue = append(t.queue, x)
	t.mu.Unlock()
	return x
}

// produced counts one more event of x in flight.
func (t *tracker) produced(x *txn) {
	t.mu.Lock()
	x.pending++
	t.mu.Unlock()
}

// acked records Kafka's answer for one event of x.
func (t *tracker) acked(x *txn, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.err == nil {
			t.err = err
		}
		return
	}
	x.pending--
	t.advance()
}

func (t *tracker) commit(x *txn, end pglogrepl.LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	x.endLSN = end
	x.committed = true
	t.advance()
}

// advance pops the complete prefix; callers hold mu.
func (t *tracker) advance() {
	n := 0
	for n < len(t.queue) && t.queue[n].committed && t.queue[n].pending == 0 {
		t.flushed = t.queue[n].endLSN
		n++
	}
	if n > 0 {
		clear(t.queue[:n])
		t.queue = t.queue[n:]
	}
}

// idleAt moves the position to lsn when nothing is in flight: everything before it has been
// read and delivered. It is how an idle slot keeps up with WAL written by other databases.
func (t *tracker) idleAt(lsn pglogrepl.LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) == 0 && lsn > t.flushed {
		t.flushed = lsn
	}
}

// state returns the position to confirm, the first delivery error, and the commit time of the
// oldest transaction not yet delivered (zero when none).
func (t *tracker) state() (pglogrepl.LSN, error, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var oldest time.Time
	if len(t.queue) > 0 {
		oldest = t.queue[0].commit
	}
	return t.flushed, t.err, oldest
}
