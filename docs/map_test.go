// Package docs holds the project's pages; its only Go is this test of design.md's map against
// the code.
package docs

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/fin-orchestrator/fin-orchestrator/"

// rank orders the map's layers; an import runs to a lower rank. Parts and base may import their
// own layer; stages never do (they meet only through data contracts); test support is imported
// by entries alone (cmd/finbench), and itself imports only parts and base.
var rank = map[string]int{"entry": 5, "composition": 4, "stage": 3, "part": 2, "base": 1, "test": 0}

// mapRow is one row of the map's table: | layer | `package` | provides |.
var mapRow = regexp.MustCompile("^\\| (\\w+) \\| `([^`]+)` \\| (.+) \\|$")

// readMap returns the layer of each package on design.md's map.
func readMap(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("design.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	layers := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := mapRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if _, ok := rank[m[1]]; !ok {
			t.Errorf("design.md: %s is on layer %q, which is none of the map's", m[2], m[1])
		}
		if _, dup := layers[m[2]]; dup {
			t.Errorf("design.md: %s has two rows", m[2])
		}
		layers[m[2]] = m[1]
	}
	if len(layers) == 0 {
		t.Fatal("design.md has no map rows (| layer | `package` | provides |)")
	}
	return layers
}

// packages returns each package of the module with the module's packages it imports (tests'
// imports aside).
func packages(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		name := strings.TrimPrefix(fields[0], module)
		pkgs[name] = nil
		for _, imp := range fields[1:] {
			if dep, ok := strings.CutPrefix(imp, module); ok {
				pkgs[name] = append(pkgs[name], dep)
			}
		}
	}
	return pkgs
}

func TestMapNamesEveryPackage(t *testing.T) {
	layers, pkgs := readMap(t), packages(t)
	for p := range pkgs {
		if _, ok := layers[p]; !ok {
			t.Errorf("package %s has no row on docs/design.md's map", p)
		}
	}
	for p := range layers {
		if _, ok := pkgs[p]; !ok {
			t.Errorf("docs/design.md's map names %s, which is no package", p)
		}
	}
}

func TestMapArrowsRunDown(t *testing.T) {
	layers, pkgs := readMap(t), packages(t)
	for from, deps := range pkgs {
		for _, to := range deps {
			lf, lt := layers[from], layers[to]
			if lf == "" || lt == "" {
				continue // TestMapNamesEveryPackage names it
			}
			if !allowed(lf, lt) {
				t.Errorf("%s (%s) imports %s (%s): against the map's arrows", from, lf, to, lt)
			}
		}
	}
}

func allowed(from, to string) bool {
	switch {
	case to == "test":
		return from == "entry"
	case from == "test":
		return rank[to] <= rank["part"]
	case rank[to] == rank[from]:
		return rank[to] <= rank["part"]
	}
	return rank[to] < rank[from]
}

// The rule itself, on the cases that matter: a stage importing a stage, an arrow up, test
// support in a shipped package.
func TestMapRules(t *testing.T) {
	for _, c := range []struct {
		from, to string
		ok       bool
	}{
		{"entry", "composition", true}, {"composition", "stage", true}, {"stage", "part", true},
		{"part", "part", true}, {"part", "base", true}, {"base", "base", true}, {"entry", "test", true},
		{"test", "part", true},
		{"stage", "stage", false}, {"part", "stage", false}, {"base", "part", false},
		{"composition", "composition", false}, {"stage", "test", false}, {"composition", "test", false},
		{"test", "stage", false},
	} {
		if got := allowed(c.from, c.to); got != c.ok {
			t.Errorf("%s -> %s allowed = %v, want %v", c.from, c.to, got, c.ok)
		}
	}
	if readMap(t)["shared/lambdalocal"] != "stage" {
		t.Error("shared/lambdalocal is no stage: it could import this stack's functions")
	}
}
