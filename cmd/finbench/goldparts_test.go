package main

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
)

// Each posting's commit -> gold splits into parts that sum to it, by the builds around it.
func TestDecomposeGold(t *testing.T) {
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	// A run asks for the warehouse turn at from and holds it 0.5 s before dbt starts.
	run := func(from, to float64) console.DbtRun {
		return console.DbtRun{At: at(to), Seconds: to - from - 0.5, TurnSeconds: 0.5}
	}
	s := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
	for _, tc := range []struct {
		name         string
		inRaw, seen  float64 // the posting commits at 0
		runs         []console.DbtRun
		want         []time.Duration // raw, behind, skipped, trigger, turn, build, seen
		wantSkipped  int
		unattributed bool
	}{
		{name: "straight into the next build", inRaw: 1, seen: 4.2, runs: []console.DbtRun{run(1.5, 4)},
			want: []time.Duration{s(1), 0, 0, s(0.5), s(0.5), s(2), s(0.2)}},
		{name: "behind a running build, then one that did not publish it", inRaw: 1, seen: 9.5,
			runs: []console.DbtRun{run(6.5, 9), run(-2, 3), run(3.5, 6), run(-5, -3)},
			want: []time.Duration{s(1), s(2), s(3), s(0.5), s(0.5), s(2), s(0.5)}, wantSkipped: 1},
		{name: "its build started before the RAW poll saw it", inRaw: 2, seen: 4.5, runs: []console.DbtRun{run(1.5, 4)},
			want: []time.Duration{s(1.5), 0, 0, 0, s(0.5), s(2), s(0.5)}},
		{name: "the build after the one running at its load", inRaw: 1, seen: 6, runs: []console.DbtRun{run(0, 3), run(3, 5.5)},
			want: []time.Duration{s(1), s(2), 0, 0, s(0.5), s(2), s(0.5)}},
		{name: "seen before any known build", inRaw: 1, seen: 2, runs: []console.DbtRun{run(1.5, 4)}, unattributed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.New()
			raw, gold := newSeenSet(), newSeenSet()
			raw.rows[id] = seenRow{commit: base, seen: at(tc.inRaw)}
			gold.rows[id] = seenRow{commit: base, seen: at(tc.seen)}
			p := decomposeGold(raw, gold, []uuid.UUID{id, uuid.New()}, tc.runs)
			if tc.unattributed {
				if p.unattributed != 1 || len(p.build) != 0 {
					t.Fatalf("unattributed %d, parts %d; want 1 and none", p.unattributed, len(p.build))
				}
				return
			}
			if len(p.build) != 1 {
				t.Fatalf("%d postings split, want 1 (the other was never seen)", len(p.build))
			}
			got := []time.Duration{p.raw[0], p.behind[0], p.skipped[0], p.trigger[0], p.turn[0], p.build[0], p.seen[0]}
			if !slices.Equal(got, tc.want) || p.skippedBuilds[0] != tc.wantSkipped {
				t.Errorf("parts %v, skipped builds %d; want %v, %d", got, p.skippedBuilds[0], tc.want, tc.wantSkipped)
			}
			var sum time.Duration
			for _, d := range got {
				sum += d
			}
			if sum != s(tc.seen) {
				t.Errorf("parts sum to %v, want commit -> gold %v", sum, s(tc.seen))
			}
		})
	}
}
