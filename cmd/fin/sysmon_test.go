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

// TestWithEnv: fin up starts with the C library's arenas capped (re-executed with
// MALLOC_ARENA_MAX), unless the user set the variable, and no other command changes its start.
func TestWithEnv(t *testing.T) {
	up := commands["up"].env
	for _, c := range []struct {
		name    string
		env     []string
		want    []string
		changed bool
	}{
		{"unset: capped", []string{"HOME=/root"}, []string{"HOME=/root", "MALLOC_ARENA_MAX=2"}, true},
		{"the user's own value wins", []string{"MALLOC_ARENA_MAX=8", "HOME=/root"}, []string{"MALLOC_ARENA_MAX=8", "HOME=/root"}, false},
		{"a longer name is another variable", []string{"MALLOC_ARENA_MAX_X=1"}, []string{"MALLOC_ARENA_MAX_X=1", "MALLOC_ARENA_MAX=2"}, true},
	} {
		got, changed := withEnv(slices.Clone(c.env), up)
		if changed != c.changed || !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, %v; want %q, %v", c.name, got, changed, c.want, c.changed)
		}
	}
	for name, cmd := range commands {
		if name != "up" && len(cmd.env) > 0 {
			t.Errorf("fin %s re-executes itself with %q", name, cmd.env)
		}
	}
}
