package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// A build is marked held when its cut stayed more than a second behind the least of what each
// RAW table had loaded at its start: it could have published more.
func TestCutBuildLine(t *testing.T) {
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	for _, tc := range []struct {
		name     string
		cut      time.Time
		loaded   []time.Time
		wantHeld string // "" for not held
		wantMark string // what else the line says of the cut
	}{
		{name: "the cut at what RAW held", cut: at(9.5), loaded: []time.Time{at(10), at(10.2), at(9.8)}},
		{name: "one table behind holds the cut with it", cut: at(3), loaded: []time.Time{at(10), at(3.5), at(9.8)},
			wantMark: "at accounts, 6.50 s behind transactions"},
		{name: "every table ahead of the cut", cut: at(3), loaded: []time.Time{at(10), at(9), at(9.8)}, wantHeld: "held 6.00 s behind RAW"},
		{name: "no cut published", loaded: []time.Time{at(10), at(9), at(9.8)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := cutBuild{start: at(11), end: at(15), sel: "source:raw.accounts+", cut: tc.cut, loaded: tc.loaded}.line()
			if got := strings.Contains(line, "held"); got != (tc.wantHeld != "") || !strings.Contains(line, tc.wantHeld) {
				t.Errorf("line %q, want held %q", line, tc.wantHeld)
			}
			if !strings.Contains(line, tc.wantMark) {
				t.Errorf("line %q, want %q", line, tc.wantMark)
			}
		})
	}
}

// A posting is whole in RAW once every table has loaded its commit: the latest of its own
// sighting and each table's first load holding it; a table that never held it leaves it out.
func TestWholeInRaw(t *testing.T) {
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	// Each table's loads: loaded at, newest commit held (the second table lags the first).
	steps := [][]loadStep{
		{{at(1), at(0.5)}, {at(2), at(1.5)}, {at(3), at(2.5)}},
		{{at(1.5), at(0.2)}, {at(6), at(1.8)}},
		{{at(1.2), at(0.9)}, {at(2.2), at(2.9)}},
	}
	for _, tc := range []struct {
		name         string
		commit, seen float64
		want         float64
		notWhole     bool
	}{
		{name: "every table held it by its own sighting", commit: 0.1, seen: 1.8, want: 1.8},
		{name: "the lagging table's load is the last", commit: 1, seen: 2.1, want: 6},
		{name: "a table never held it", commit: 2, seen: 3.1, notWhole: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.New()
			raw := newSeenSet()
			raw.rows[id] = seenRow{commit: at(tc.commit), seen: at(tc.seen)}
			got, ok := wholeInRaw(raw, []uuid.UUID{id}, steps).row(id)
			if ok == tc.notWhole {
				t.Fatalf("whole %v, want %v", ok, !tc.notWhole)
			}
			if ok && !got.seen.Equal(at(tc.want)) {
				t.Errorf("whole in RAW at %v, want %v", got.seen.Sub(base), at(tc.want).Sub(base))
			}
		})
	}
}
