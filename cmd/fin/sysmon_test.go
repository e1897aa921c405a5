package main

import (
	"slices"
	"testing"
)

func TestWithGODEBUG(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     []string
		want    []string
		changed bool
	}{
		{"no GODEBUG", []string{"HOME=/root"}, []string{"HOME=/root", "GODEBUG=" + sysmonAwake}, true},
		{"other settings kept", []string{"GODEBUG=gctrace=1", "A=b"}, []string{"A=b", "GODEBUG=gctrace=1," + sysmonAwake}, true},
		{"the user's own schedtrace wins", []string{"GODEBUG=gctrace=1, schedtrace=1000"}, []string{"GODEBUG=gctrace=1, schedtrace=1000"}, false},
		{"schedtrace=0 is a choice too", []string{"GODEBUG=schedtrace=0"}, []string{"GODEBUG=schedtrace=0"}, false},
		{"empty GODEBUG", []string{"GODEBUG="}, []string{"GODEBUG=" + sysmonAwake}, true},
	} {
		got, changed := withGODEBUG(c.env, sysmonAwake)
		if changed != c.changed || !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, %v; want %q, %v", c.name, got, changed, c.want, c.changed)
		}
	}
}
