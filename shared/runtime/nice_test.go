package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The wrapper runs dbt, with its arguments, dbtNice below the stack's own CPU priority.
func TestNiceDbtLowersDbtsPriority(t *testing.T) {
	if _, err := exec.LookPath("nice"); err != nil {
		t.Skip("no nice(1): the stack runs dbt itself")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "it's dbt") // a quote and a space, as a path may hold
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"$(nice) $*\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	wrapper, err := niceDbt(fake, filepath.Join(dir, "work"))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := exec.Command("nice").Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(wrapper, "build", "--select", "a b").Output()
	if err != nil {
		t.Fatalf("run the wrapper %s: %v", wrapper, err)
	}
	base, _ := strconv.Atoi(strings.TrimSpace(string(ours)))
	want := strconv.Itoa(min(base+dbtNice, 19)) + " build --select a b\n"
	if string(out) != want {
		t.Fatalf("dbt through the wrapper printed %q, want %q (niceness, then its arguments)", out, want)
	}
}
