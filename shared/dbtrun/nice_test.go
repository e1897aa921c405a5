package dbtrun

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A Config with Nice runs dbt (or its worker) that much below our CPU priority, with its
// arguments intact; without Nice it runs dbt as it is.
func TestNicedLowersDbtsPriority(t *testing.T) {
	if _, err := exec.LookPath("nice"); err != nil {
		t.Skip("no nice(1): dbt runs at our priority")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "it's dbt") // a quote and a space, as a path may hold
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"$(nice) $*\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	ours, err := exec.Command("nice").Output()
	if err != nil {
		t.Fatal(err)
	}
	base, _ := strconv.Atoi(strings.TrimSpace(string(ours)))
	for _, tc := range []struct {
		nice, want int
	}{
		{0, base},
		{10, min(base+10, 19)},
	} {
		name, args := Config{Nice: tc.nice}.niced(fake, "build", "--select", "a b")
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			t.Fatalf("Nice %d: run %s %q: %v", tc.nice, name, args, err)
		}
		if want := strconv.Itoa(tc.want) + " build --select a b\n"; string(out) != want {
			t.Errorf("Nice %d: dbt printed %q, want %q (its niceness, then its arguments)", tc.nice, out, want)
		}
	}
}
