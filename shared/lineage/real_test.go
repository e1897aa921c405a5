package lineage

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestRealProject builds the graph from the dbt project's own manifest (made by dbt docs
// generate, which the console serves too) and the real template.yaml: every captured table
// reaches exactly the gold models and exposures its RAW source feeds, and the docs load nothing
// from another host. Skipped without the venv's dbt unless FIN_REQUIRE_DBT is set.
func TestRealProject(t *testing.T) {
	root := repoRoot(t)
	dbt := filepath.Join(root, ".venv", "bin", "dbt")
	if _, err := os.Stat(dbt); err != nil {
		if os.Getenv("FIN_REQUIRE_DBT") != "" {
			t.Fatalf("%s is missing: %v", dbt, err)
		}
		t.Skipf("%s is missing (bash scripts/venv.sh makes it)", dbt)
	}
	docs := &Docs{DBT: dbt, ProjectDir: filepath.Join(root, "dbt"), Dir: t.TempDir(), Nice: 10}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := docs.Generate(ctx, false); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(docs.Dir, "index.html"))
	if err != nil || len(index) < 10000 || len(ExternalRefs(index)) > 0 {
		t.Fatalf("docs index.html: %d bytes, external %q, err %v", len(index), ExternalRefs(index), err)
	}
	body, err := os.ReadFile(filepath.Join(docs.Dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := FromManifest(body)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tables := bronze.SourceTables()
	if err := g.AddCapture(tpl, tables); err != nil {
		t.Fatal(err)
	}
	g.Finish()
	var ends []Node
	for _, n := range g.Nodes {
		if n.Kind == Exposure || n.Kind == Model && n.Detail == "gold" {
			ends = append(ends, n)
		}
	}
	if exposures := countKind(g, Exposure); exposures < 4 {
		t.Fatalf("%d exposures in the manifest, want the API's 4 history endpoints", exposures)
	}
	for _, end := range ends {
		reached := 0
		for _, table := range tables {
			src := g.RawSourceID(table)
			// The capture's chain is per table: the table reaches an end exactly when its RAW
			// source does (a shared node would make every table reach everything).
			if got, want := g.Reaches("table:public."+table, end.ID), g.Reaches(src, end.ID); got != want {
				t.Errorf("table %s reaches %s: %v, but its source %s: %v", table, end.ID, got, src, want)
			}
			if g.Reaches("table:public."+table, end.ID) {
				reached++
			}
			if end.Kind == Exposure && strings.Contains(end.Detail, strings.TrimSuffix(table, "s")) && !g.Reaches("table:public."+table, end.ID) {
				t.Errorf("table %s does not reach its endpoint %s", table, end.Name)
			}
		}
		if reached == 0 {
			t.Errorf("no captured table reaches %s", end.ID)
		}
	}
	t.Logf("%d nodes, %d edges; %d gold models and exposures checked", len(g.Nodes), len(g.Edges), len(ends))
	for _, kind := range []Kind{Table, Topic, Landing, Bronze, Loader, Source} {
		if countKind(g, kind) < len(tables) {
			t.Errorf("%d %s nodes for %d tables", countKind(g, kind), kind, len(tables))
		}
	}
}

func countKind(g *Graph, kind Kind) int {
	n := 0
	for _, x := range g.Nodes {
		if x.Kind == kind {
			n++
		}
	}
	return n
}
