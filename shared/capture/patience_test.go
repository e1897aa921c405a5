package capture_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// The package's tests share one Postgres cluster with the other packages' tests (go test ./...
// runs packages side by side) and with whatever else runs on the machine. A logical slot's
// creation waits for every transaction that held a transaction id on the cluster when it began, in
// any database (capture.Metrics.WaitingFor): another package's capture reading a large table in
// its initial snapshot holds a capture here at its start for as long as that takes. That time is
// not the capture's: the waits below do not count it, up to clusterPatience, and say so.
const clusterPatience = 5 * time.Minute

// captures are the metrics of the captures the harness runs (start), and the databases the
// tests capture from (newHarness: a slot another program makes there, Debezium's, shows as a
// backend of the database waiting for a transaction), for clusterWait.
var captures struct {
	mu  sync.Mutex
	all map[*capture.Metrics]bool
	dbs map[*pgtest.DB]bool
	// asked and answer throttle the look-ups of the databases' waits to one a second.
	asked  time.Time
	answer string
}

// watchDatabase makes waits of db's backends on the cluster known to the waits of t (until t
// ends).
func watchDatabase(t testing.TB, db *pgtest.DB) { watch(t, &captures.dbs, db) }

// watchCapture makes m's waits on the cluster known to the waits of t (until t ends).
func watchCapture(t testing.TB, m *capture.Metrics) { watch(t, &captures.all, m) }

// watched is what captures holds (the package's comparable is a function of contract_test.go).
type watched interface{ *capture.Metrics | *pgtest.DB }

// watch adds k to the set of captures until t ends.
func watch[K watched](t testing.TB, set *map[K]bool, k K) {
	captures.mu.Lock()
	defer captures.mu.Unlock()
	if *set == nil {
		*set = map[K]bool{}
	}
	(*set)[k] = true
	t.Cleanup(func() {
		captures.mu.Lock()
		defer captures.mu.Unlock()
		delete(*set, k)
	})
}

// clusterWait is what a running capture waits for elsewhere on the cluster, "" when none does.
func clusterWait() string {
	captures.mu.Lock()
	defer captures.mu.Unlock()
	for m := range captures.all {
		if w := m.WaitingFor.Load(); w != nil {
			return *w
		}
	}
	if time.Since(captures.asked) < time.Second {
		return captures.answer
	}
	captures.asked, captures.answer = time.Now(), ""
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for db := range captures.dbs {
		if w, err := pgtest.Waits(ctx, db.Pool, db.Name); err == nil && w != "" {
			captures.answer = w
			break
		}
	}
	return captures.answer
}

// openXids names the cluster's open transactions holding an id (pgtest.OpenXids), for a failed
// wait's message: what a slot being created would wait for.
func openXids() string {
	captures.mu.Lock()
	var db *pgtest.DB
	for d := range captures.dbs {
		db = d
		break
	}
	captures.mu.Unlock()
	if db == nil {
		return "unknown (no database watched)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgtest.Describe(ctx, db.Pool)
}

// patience is a deadline of d that time a capture spends waiting on the cluster does not use.
// With progress, d is how long the wait may go without progress changing (the machine's load
// slows a capture down, it does not stop it), within limit in all.
type patience struct {
	t           testing.TB
	what        string
	d           time.Duration
	began, last time.Time
	excused     time.Duration // time held by the cluster since began
	held        time.Duration // time held by the cluster since start
	told        bool
	progress    func() string
	seen        string
	start       time.Time
	limit       time.Duration
}

func newPatience(t testing.TB, what string, d time.Duration) *patience {
	now := time.Now()
	return &patience{t: t, what: what, d: d, began: now, last: now, start: now}
}

// following makes p's d a time without progress, within limit in all.
func (p *patience) following(progress func() string, limit time.Duration) *patience {
	p.progress, p.seen, p.limit = progress, progress(), limit
	return p
}

// expired says whether d of the capture's own time has passed since the wait began (or, with
// progress, since progress last changed). A capture held by the cluster for longer than
// clusterPatience fails the test, naming what held it; one past limit fails too.
func (p *patience) expired() bool {
	p.t.Helper()
	now := time.Now()
	if p.progress != nil {
		if seen := p.progress(); seen != p.seen {
			p.seen, p.began, p.excused = seen, now, 0
		}
		if now.Sub(p.start) > p.limit+p.held {
			p.t.Fatalf("%s: still not done after %s, though it went on (%s); open transactions holding ids on the cluster: %s",
				p.what, now.Sub(p.start).Round(time.Second), p.seen, openXids())
		}
	}
	if w := clusterWait(); w != "" {
		p.excused += now.Sub(p.last)
		p.held += now.Sub(p.last)
		if !p.told {
			p.told = true
			p.t.Logf("%s: a slot being created waits for a transaction elsewhere on the cluster (the wait does not count it): %s", p.what, w)
		}
		if p.held > clusterPatience {
			p.t.Fatalf("%s: a slot being created waited more than %s for transactions elsewhere on the cluster: %s", p.what, clusterPatience, w)
		}
	}
	p.last = now
	return now.Sub(p.began)-p.excused > p.d
}

// String says how long the wait took, how much of it the cluster held the capture, and which
// transactions hold ids on the cluster now (a wait ends with String only when it fails).
func (p *patience) String() string {
	s := p.d.String()
	if p.progress != nil {
		s += " without progress (" + p.seen + ")"
	}
	if p.held > 0 {
		s += " (plus " + p.held.Round(time.Second).String() + " a slot being created waited for transactions elsewhere on the cluster)"
	}
	return s + "; open transactions holding ids on the cluster: " + openXids()
}
