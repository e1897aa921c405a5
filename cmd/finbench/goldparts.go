package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
)

// runSet gathers the dbt runs of the console's status polled through a run: the status keeps
// only the last 20, fewer than a 5-minute run makes.
type runSet struct {
	mu   sync.Mutex
	runs map[time.Time]console.DbtRun // by end: one build ends at a time
}

func newRunSet() *runSet { return &runSet{runs: map[time.Time]console.DbtRun{}} }

func (s *runSet) add(runs []console.DbtRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range runs {
		s.runs[r.At] = r
	}
}

// all returns the runs gathered, newest first as the console lists them.
func (s *runSet) all() []console.DbtRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]console.DbtRun, 0, len(s.runs))
	for _, r := range s.runs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b console.DbtRun) int { return b.At.Compare(a.At) })
	return out
}

func (s *runSet) poll(ctx context.Context, consoleURL, token string) error {
	runs, err := dbtRuns(ctx, consoleURL, token)
	if err != nil {
		return err
	}
	s.add(runs)
	return nil
}

// goldParts splits each posting's commit -> gold into consecutive parts that sum to it, from its
// sightings in RAW and gold and the builds' start and end:
//   - raw: commit -> first seen in RAW (the load committed; the build that took it started later);
//   - behind: waiting for the build that was running when it reached RAW;
//   - skipped: builds that started after it was in RAW yet did not publish it (a cut held back by
//     a table whose load was behind, or a build of other tables), from the first one's start;
//   - trigger: the rest of the wait for the build that published it (the queue's batching window
//     and the runner's reading of it);
//   - turn: that build's wait for its warehouse turn (the snapshot of RAW it reads);
//   - build: that build's dbt wall;
//   - seen: its end -> the first gold poll that held the posting (polls every second).
type goldParts struct {
	raw, behind, skipped, trigger, turn, build, seen []time.Duration
	skippedBuilds                                    []int // builds each posting waited through unpublished
	unattributed                                     int   // seen in gold before any known build ended
}

// builtRun is a dbt run: it asked for the warehouse turn at start, dbt started at dbt.
type builtRun struct{ start, dbt, end time.Time }

// decomposeGold attributes each posting seen in gold to the last run ending before its gold
// sighting (the build that published it) and splits its wait; runs need not be sorted.
func decomposeGold(raw, gold *seenSet, ids []uuid.UUID, runs []console.DbtRun) goldParts {
	rs := make([]builtRun, 0, len(runs))
	for _, r := range runs {
		dbt := r.At.Add(-time.Duration(r.Seconds * float64(time.Second)))
		rs = append(rs, builtRun{start: dbt.Add(-time.Duration(r.TurnSeconds * float64(time.Second))), dbt: dbt, end: r.At})
	}
	slices.SortFunc(rs, func(a, b builtRun) int { return a.end.Compare(b.end) })
	var p goldParts
	for _, id := range ids {
		g, ok1 := gold.row(id)
		r, ok2 := raw.row(id)
		if !ok1 || !ok2 {
			continue
		}
		i := -1
		for j := range rs {
			if !rs[j].end.After(g.seen) {
				i = j
			}
		}
		if i < 0 {
			p.unattributed++
			continue
		}
		p.add(g.commit, r.seen, g.seen, rs[:i], rs[i])
	}
	return p
}

// add splits one posting's wait: committed at commit, in RAW at inRaw, in gold at seen, published
// by pub, with the runs that ended before pub in earlier.
func (p *goldParts) add(commit, inRaw, seen time.Time, earlier []builtRun, pub builtRun) {
	// A build that started before the RAW poll saw the posting had it in its snapshot: the load
	// committed by then.
	loaded := earliest(inRaw, pub.start)
	if loaded.Before(commit) {
		loaded = commit
	}
	behindUntil, skippedFrom, n := loaded, time.Time{}, 0
	for _, r := range earlier {
		switch {
		case !r.start.After(loaded) && r.end.After(loaded):
			behindUntil = earliest(r.end, pub.start)
		case r.start.After(loaded) && !r.end.After(pub.start):
			if n == 0 {
				skippedFrom = r.start
			}
			n++
		}
	}
	skipped := time.Duration(0)
	if n > 0 {
		skipped = pub.start.Sub(latest(skippedFrom, behindUntil))
	}
	wait := pub.start.Sub(loaded)
	p.raw = append(p.raw, loaded.Sub(commit))
	p.behind = append(p.behind, behindUntil.Sub(loaded))
	p.skipped = append(p.skipped, skipped)
	p.trigger = append(p.trigger, wait-behindUntil.Sub(loaded)-skipped)
	p.turn = append(p.turn, pub.dbt.Sub(pub.start))
	p.build = append(p.build, pub.end.Sub(pub.dbt))
	p.seen = append(p.seen, seen.Sub(pub.end))
	p.skippedBuilds = append(p.skippedBuilds, n)
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// print writes the parts' p50/p95 (each part's own percentiles: they do not add up).
func (p goldParts) print() {
	if len(p.build) == 0 {
		return
	}
	fmt.Printf("    where commit -> gold went, %d postings by the build that published each (p50 / p95 / max of each part; %d seen before any build known):\n", len(p.build), p.unattributed)
	for _, part := range []struct {
		name string
		d    []time.Duration
	}{
		{"commit -> in RAW", p.raw},
		{"in RAW -> behind the build running then", p.behind},
		{"builds that started after it was in RAW and did not publish it (cut held back, other tables)", p.skipped},
		{"the rest of the wait for its build (batching window, queue read)", p.trigger},
		{"its build's wait for its warehouse turn (the snapshot of RAW)", p.turn},
		{"its build's dbt wall", p.build},
		{"its build's end -> seen by the 1 s gold poll", p.seen},
	} {
		fmt.Printf("      %-96s %s\n", part.name+":", summarize(part.d))
	}
	skippedAny := 0
	for _, n := range p.skippedBuilds {
		if n > 0 {
			skippedAny++
		}
	}
	fmt.Printf("      postings that waited through a build that did not publish them: %d of %d (%.0f%%)\n",
		skippedAny, len(p.skippedBuilds), 100*float64(skippedAny)/float64(len(p.skippedBuilds)))
}
