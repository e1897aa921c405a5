package capture_test

import (
	"sync"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
)

// The package's tests share one Postgres cluster with the other packages' tests (go test ./...
// runs packages side by side) and with whatever else runs on the machine. A logical slot's
// creation waits for every transaction that held a transaction id on the cluster when it began, in
// any database (capture.Metrics.WaitingFor): another package's capture reading a large table in
// its initial snapshot holds a capture here at its start for as long as that takes. That time is
// not the capture's: the waits below do not count it, up to clusterPatience, and say so.
const clusterPatience = 5 * time.Minute

// captures are the metrics of the captures the harness runs (start), for clusterWait.
var captures struct {
	mu  sync.Mutex
	all map[*capture.Metrics]bool
}

// watchCapture makes m's waits on the cluster known to the waits of t (until t ends).
func watchCapture(t testing.TB, m *capture.Metrics) {
	captures.mu.Lock()
	defer captures.mu.Unlock()
	if captures.all == nil {
		captures.all = map[*capture.Metrics]bool{}
	}
	captures.all[m] = true
	t.Cleanup(func() {
		captures.mu.Lock()
		defer captures.mu.Unlock()
		delete(captures.all, m)
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
	return ""
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
			p.t.Fatalf("%s: still not done after %s, though it went on (%s)", p.what, now.Sub(p.start).Round(time.Second), p.seen)
		}
	}
	if w := clusterWait(); w != "" {
		p.excused += now.Sub(p.last)
		p.held += now.Sub(p.last)
		if !p.told {
			p.told = true
			p.t.Logf("%s: a capture's slot waits for a transaction elsewhere on the cluster (the wait does not count it): %s", p.what, w)
		}
		if p.held > clusterPatience {
			p.t.Fatalf("%s: a capture's slot waited more than %s for transactions elsewhere on the cluster: %s", p.what, clusterPatience, w)
		}
	}
	p.last = now
	return now.Sub(p.began)-p.excused > p.d
}

// String says how long the wait took and how much of it the cluster held the capture.
func (p *patience) String() string {
	s := p.d.String()
	if p.progress != nil {
		s += " without progress (" + p.seen + ")"
	}
	if p.held > 0 {
		s += " (plus " + p.held.Round(time.Second).String() + " a capture's slot waited for transactions elsewhere on the cluster)"
	}
	return s
}
