package lineage

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

const fixtureManifest = `{
 "sources": {"source.p.raw.customers": {"resource_type": "source", "name": "customers", "source_name": "raw", "schema": "raw"}},
 "nodes": {
  "model.p.stg": {"resource_type": "model", "name": "stg", "schema": "silver", "depends_on": {"nodes": ["source.p.raw.customers"]}},
  "model.p.dim": {"resource_type": "model", "name": "dim", "schema": "gold", "depends_on": {"nodes": ["model.p.stg"]}},
  "model.p.fct": {"resource_type": "model", "name": "fct", "schema": "gold", "depends_on": {"nodes": ["model.p.dim"]}},
  "test.p.stg_unique": {"resource_type": "test", "name": "stg_unique", "depends_on": {"nodes": ["model.p.stg"]}},
  "test.p.stg_not_null": {"resource_type": "test", "name": "stg_not_null", "depends_on": {"nodes": ["model.p.stg"]}},
  "test.p.dim_unique": {"resource_type": "test", "name": "dim_unique", "depends_on": {"nodes": ["model.p.dim"]}},
  "seed.p.s": {"resource_type": "seed", "name": "s"}
 },
 "exposures": {"exposure.p.api": {"name": "api", "label": "GET /customers/{id}/history", "depends_on": {"nodes": ["model.p.dim"]}}}
}`

const fixtureTemplate = `
Resources:
  Landing:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Customers:
          Type: SelfManagedKafka
          Properties:
            Topics: [fin.public.customers]
  Loader:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Object:
          Type: S3
          Properties:
            Bucket: b
            Events: s3:ObjectCreated:*
            Filter:
              S3Key:
                Rules:
                  - {Name: prefix, Value: bronze/}
                  - {Name: suffix, Value: .parquet}
`

func results(statuses map[string]string) []byte {
	b := []byte(`{"metadata": {"generated_at": "2026-01-02T03:04:05Z"}, "results": [`)
	first := true
	for _, id := range slices.Sorted(maps.Keys(statuses)) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"unique_id": "`+id+`", "status": "`+statuses[id]+`", "execution_time": 1.5,
		  "timing": [{"name": "execute", "completed_at": "2026-01-02T03:04:00Z"}], "adapter_response": {"rows_affected": 7}}`...)
	}
	return append(b, "]}"...)
}

func fixtureGraph(t *testing.T, statuses map[string]string) *Graph {
	t.Helper()
	g, err := FromManifest([]byte(fixtureManifest))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Parse([]byte(fixtureTemplate), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.AddCapture(tpl, []string{"customers"}); err != nil {
		t.Fatal(err)
	}
	if err := g.ApplyRunResults(results(statuses)); err != nil {
		t.Fatal(err)
	}
	g.Finish()
	return g
}

func TestGraphShape(t *testing.T) {
	g := fixtureGraph(t, nil)
	chain := []string{"table:public.customers", "topic:fin.public.customers", "landing:Landing/Customers",
		"bronze:bronze/customers/", "loader:Loader/Object/customers", "source.p.raw.customers", "model.p.stg", "model.p.dim", "exposure.p.api"}
	for i, id := range chain {
		n := g.Node(id)
		if n == nil {
			t.Fatalf("no node %s; nodes %+v", id, g.Nodes)
		}
		if n.Layer != i {
			t.Errorf("%s: layer %d, want %d", id, n.Layer, i)
		}
		if i > 0 && !slices.Contains(g.Edges, Edge{chain[i-1], id}) {
			t.Errorf("no edge %s -> %s", chain[i-1], id)
		}
	}
	if g.Node("seed.p.s") != nil {
		t.Error("a seed is in the graph")
	}
	if n := g.Node("test.p.stg_unique"); n == nil || n.Layer != g.Node("model.p.stg").Layer {
		t.Errorf("the test of stg is not in stg's column: %+v", n)
	}
}

func TestGraphStatus(t *testing.T) {
	for _, c := range []struct {
		name     string
		statuses map[string]string
		blocked  map[string]string // node -> what blocks it
		passed   map[string]int    // node -> tests passed
		failed   map[string]int
	}{
		{name: "all pass",
			statuses: map[string]string{"model.p.stg": "success", "model.p.dim": "success", "model.p.fct": "success",
				"test.p.stg_unique": "pass", "test.p.stg_not_null": "pass", "test.p.dim_unique": "pass"},
			passed: map[string]int{"model.p.stg": 2, "model.p.dim": 1}},
		{name: "a failed test blocks the children of its model, their tests and the exposure",
			statuses: map[string]string{"model.p.stg": "success", "model.p.dim": "skipped", "model.p.fct": "skipped",
				"test.p.stg_unique": "fail", "test.p.stg_not_null": "pass", "test.p.dim_unique": "skipped"},
			blocked: map[string]string{"model.p.dim": "test.p.stg_unique", "model.p.fct": "test.p.stg_unique",
				"test.p.dim_unique": "test.p.stg_unique", "exposure.p.api": "test.p.stg_unique"},
			passed: map[string]int{"model.p.stg": 1}, failed: map[string]int{"model.p.stg": 1}},
		{name: "a failed model blocks its descendants",
			statuses: map[string]string{"model.p.stg": "success", "model.p.dim": "error", "model.p.fct": "skipped",
				"test.p.stg_unique": "pass", "test.p.stg_not_null": "pass", "test.p.dim_unique": "skipped"},
			blocked: map[string]string{"model.p.fct": "model.p.dim", "test.p.dim_unique": "model.p.dim", "exposure.p.api": "model.p.dim"},
			passed:  map[string]int{"model.p.stg": 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := fixtureGraph(t, c.statuses)
			for _, n := range g.Nodes {
				if want := c.blocked[n.ID]; want == "" && n.Blocked() || want != "" && !slices.Equal(n.BlockedBy, []string{want}) {
					t.Errorf("%s blocked by %v, want %q", n.ID, n.BlockedBy, want)
				}
				if n.TestsPassed != c.passed[n.ID] || n.TestsFailed != c.failed[n.ID] {
					t.Errorf("%s: tests %d passed %d failed, want %d and %d", n.ID, n.TestsPassed, n.TestsFailed, c.passed[n.ID], c.failed[n.ID])
				}
				if want, ok := c.statuses[n.ID]; ok && (n.Status != want || n.BuiltAt == nil || n.Seconds != 1.5 || n.RowsAffected == nil || *n.RowsAffected != 7) {
					t.Errorf("%s: status %q built %v %v s rows %v, want %q from run_results", n.ID, n.Status, n.BuiltAt, n.Seconds, n.RowsAffected, want)
				}
			}
			if g.Built == nil || g.Built.Year() != 2026 {
				t.Errorf("graph built at %v, want run_results' generated_at", g.Built)
			}
		})
	}
}

func TestGraphErrors(t *testing.T) {
	for _, c := range []struct{ name, manifest, template, table, want string }{
		{"no RAW source", fixtureManifest, fixtureTemplate, "accounts", "table accounts: the dbt manifest has no source for raw.accounts"},
		{"no landing", fixtureManifest, "Resources: {}", "customers", "table customers: no function of the template reads a topic"},
		{"no loader", fixtureManifest, fixtureTemplate[:len(fixtureTemplate)-len(fixtureTemplate[findLoader():])], "customers", "no S3 notification of the template takes its objects (bronze/customers/...)"},
		{"dangling dependency", `{"nodes": {"model.p.a": {"resource_type": "model", "depends_on": {"nodes": ["model.p.gone"]}}}}`, fixtureTemplate, "", "model.p.a depends on model.p.gone, which the manifest lacks"},
		{"not JSON", `{`, fixtureTemplate, "", "read dbt manifest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := FromManifest([]byte(c.manifest))
			if err == nil {
				tpl, perr := samtemplate.Parse([]byte(c.template), nil)
				if perr != nil {
					t.Fatal(perr)
				}
				err = g.AddCapture(tpl, []string{c.table})
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

func findLoader() int {
	for i := range fixtureTemplate {
		if len(fixtureTemplate[i:]) > 9 && fixtureTemplate[i:i+9] == "  Loader:" {
			return i
		}
	}
	return len(fixtureTemplate)
}

func TestExternalRefs(t *testing.T) {
	for page, want := range map[string][]string{
		`<script src="//cdn.example.com/sp.js"></script>`:           {"//cdn.example.com/sp.js"},
		`i.src="https://x.example/a.js"`:                            {"https://x.example/a.js"},
		`<link href='http://fonts.example/f.css'>`:                  {"http://fonts.example/f.css"},
		`@import "https://x.example/s.css"; url(//x.example/i.png)`: {"https://x.example/s.css", "//x.example/i.png"},
		`fetch("https://api.example/x")`:                            {"https://api.example/x"},
		`ao.href="http://[::1]"; // see https://errors.example/1`:   nil,
		`<script src="manifest.json"></script>`:                     nil,
	} {
		if got := ExternalRefs([]byte(page)); !slices.Equal(got, want) {
			t.Errorf("ExternalRefs(%s) = %q, want %q", page, got, want)
		}
	}
}

func TestDocsOffline(t *testing.T) {
	dir := t.TempDir()
	index := filepath.Join(dir, "index.html")
	page := `<script>i.src="//d1fc8wv8zag5ca.cloudfront.net/2.9.0/sp.js";ao.href="http://[::1]"</script><a href="https://docs.getdbt.com">x</a>`
	os.WriteFile(index, []byte(page), 0o644)
	if err := offline(index); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(index)
	if want := `<script>i.src="data:,";ao.href="http://[::1]"</script><a href="data:,">x</a>`; string(got) != want {
		t.Errorf("offline page:\n%s\nwant\n%s", got, want)
	}
	d := &Docs{DBT: filepath.Join(dir, "no-dbt"), ProjectDir: dir, Dir: t.TempDir()}
	if err := d.Generate(context.Background(), false); err == nil || !strings.Contains(err.Error(), "dbt docs generate") {
		t.Errorf("Generate with a missing dbt: %v, want an error naming dbt docs generate", err)
	}
}
