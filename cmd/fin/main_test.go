package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fin holds what a user runs: every command is in the help, none is a benchmark (those are
// cmd/finbench's), and each is described where users read (README.md or docs/, not the
// benchmarks page).
func TestHelpListsOnlyUserCommands(t *testing.T) {
	var help strings.Builder
	usage(&help)
	pages := []string{"../../README.md"}
	more, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(more) == 0 {
		t.Fatalf("no docs/*.md found (%v)", err)
	}
	var userDocs strings.Builder
	for _, p := range append(pages, more...) {
		if filepath.Base(p) == "benchmarks.md" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		userDocs.Write(b)
	}
	if len(commands) == 0 {
		t.Fatal("no command registered")
	}
	for name, c := range commands {
		if c.hidden { // the project's own tooling (go generate), not a user's command
			if strings.Contains(help.String(), "\n  "+name+" ") {
				t.Errorf("fin --help lists the hidden command %q", name)
			}
			continue
		}
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + ` +\S`).MatchString(help.String()) {
			t.Errorf("fin --help does not list %q:\n%s", name, help.String())
		}
		if strings.Contains(strings.ToLower(name+" "+c.summary), "bench") {
			t.Errorf("fin %s (%s) is a benchmark: it belongs in cmd/finbench", name, c.summary)
		}
		if !regexp.MustCompile("fin " + regexp.QuoteMeta(name) + "([ `]|$)").MatchString(userDocs.String()) {
			t.Errorf("fin %s is described in neither README.md nor docs/ (benchmarks.md aside): a user would not find it", name)
		}
	}
}
