package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		in            []time.Duration
		p50, p95, max time.Duration
	}{
		{"none", nil, 0, 0, 0},
		{"one", ms(7), 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond},
		{"unsorted", ms(5, 1, 4, 2, 3), 3 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond},
		{"hundred", ms(func() []int {
			v := make([]int, 100)
			for i := range v {
				v[i] = 100 - i
			}
			return v
		}()...), 50 * time.Millisecond, 95 * time.Millisecond, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(tc.in)
			if got.p50 != tc.p50 || got.p95 != tc.p95 || got.max != tc.max {
				t.Errorf("summarize = %v, want p50 %v p95 %v max %v (nearest rank)", got, tc.p50, tc.p95, tc.max)
			}
		})
	}
}

func TestSeenSetKeepsFirstSightingAndSplitsDbtRuns(t *testing.T) {
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	a, b, never := uuid.New(), uuid.New(), uuid.New()
	us := func(d time.Duration) string { return itoa(base.Add(d).UnixMicro()) }
	s := newSeenSet()
	if err := s.add([][]string{{a.String(), us(0), us(300 * time.Millisecond)}}, base.Add(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// a again (the watermark's overlap) and b, seen later: a keeps its first sighting.
	if err := s.add([][]string{{a.String(), us(0), us(300 * time.Millisecond)}, {b.String(), us(10 * time.Second), us(40 * time.Second)}},
		base.Add(41*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.add([][]string{{"not-a-uuid", "1", "2"}}, base); err == nil {
		t.Error("a row whose id is not a UUID was accepted")
	}
	seen, loaded, missing := s.latencies([]uuid.UUID{a, b, never}, nil)
	if missing != 1 || len(seen) != 2 || seen[0] != 500*time.Millisecond || seen[1] != 31*time.Second || loaded[0] != 300*time.Millisecond {
		t.Fatalf("latencies = %v, %v, missing %d; want [500ms 31s], [300ms 30s], missing 1", seen, loaded, missing)
	}
	// A dbt run from 15 s to 40 s overlaps b's wait (10 s to 41 s), not a's.
	runs := []console.DbtRun{{At: base.Add(40 * time.Second), Seconds: 25}}
	quiet, _, _ := s.latencies([]uuid.UUID{a, b}, duringDbt(runs))
	if len(quiet) != 1 || quiet[0] != 500*time.Millisecond {
		t.Errorf("outside dbt runs = %v, want only a's 500ms", quiet)
	}
	if got, want := s.since(), "2026-11-25 12:00:39+00"; got != want {
		t.Errorf("next poll from %q, want %q (newest _loaded_at minus a second)", got, want)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// A gold row that is not there yet (its account's current row not built) is not seen, and holds
// the watermark back so the next poll asks for it again.
func TestSeenSetPendingRowHoldsTheWatermark(t *testing.T) {
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	us := func(d time.Duration) string { return itoa(base.Add(d).UnixMicro()) }
	a, b := uuid.New(), uuid.New()
	s := newSeenSet()
	if err := s.add([][]string{{a.String(), us(0), us(10 * time.Second), "false"}, {b.String(), us(0), us(30 * time.Second), "true"}},
		base.Add(31*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s.count([]uuid.UUID{a, b}) != 1 {
		t.Fatalf("seen %d, want only b", s.count([]uuid.UUID{a, b}))
	}
	if got, want := s.since(), "2026-11-25 12:00:09+00"; got != want {
		t.Errorf("next poll from %q, want %q (a's _loaded_at minus a second)", got, want)
	}
	if err := s.add([][]string{{a.String(), us(0), us(10 * time.Second), "true"}}, base.Add(40*time.Second)); err != nil {
		t.Fatal(err)
	}
	if seen, _, missing := s.latencies([]uuid.UUID{a}, nil); missing != 0 || seen[0] != 40*time.Second {
		t.Errorf("a: %v, missing %d; want 40s once it counts", seen, missing)
	}
}
