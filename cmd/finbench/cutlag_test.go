package main

import (
	"strings"
	"testing"
	"time"
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
