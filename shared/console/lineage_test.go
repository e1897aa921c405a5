package console

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/lineage"
)

// TestLineageView serves the page, /api/lineage and /dbt-docs/ through the console handler:
// each answers with the token and refuses without it.
func TestLineageView(t *testing.T) {
	g, err := lineage.FromManifest([]byte(`{"sources": {"source.p.raw.customers": {"name": "customers", "source_name": "raw", "schema": "raw"}},
	  "nodes": {"model.p.dim": {"resource_type": "model", "name": "dim", "schema": "gold", "depends_on": {"nodes": ["source.p.raw.customers"]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	g.Finish()
	docsDir := t.TempDir()
	// Docs already generated: the handler serves them without running dbt.
	os.WriteFile(filepath.Join(docsDir, "index.html"), []byte("<html>dbt docs</html>"), 0o644)
	os.WriteFile(filepath.Join(docsDir, "manifest.json"), []byte("{}"), 0o644)
	docs := &lineage.Docs{DBT: "/nonexistent/dbt", Dir: docsDir}
	broken := false
	graph := func(context.Context) (*lineage.Graph, error) {
		if broken {
			return nil, errors.New("no manifest")
		}
		return g, nil
	}
	extra := map[string]http.Handler{}
	maps.Copy(extra, LineageHandlers("s3cret", &Codes{}, graph, docs.Handler()))
	srv := httptest.NewServer(Handler("s3cret", &Codes{}, func(context.Context) Status { return Status{Time: time.Now()} }, extra))
	defer srv.Close()
	at := func(path, token string) (int, string, http.Header) {
		resp, body := get(t, srv.URL+path, token)
		return resp.StatusCode, string(body), resp.Header
	}
	for _, c := range []struct{ path, want string }{
		{"/", `id="lineage-graph"`},
		{"/api/lineage", `"id":"model.p.dim"`},
		{"/dbt-docs/", "dbt docs"},
		{"/dbt-docs/manifest.json", "{}"},
	} {
		for _, token := range []string{"", "wrong"} {
			if code, _, _ := at(c.path, token); code != http.StatusUnauthorized {
				t.Errorf("%s with token %q = %d, want 401", c.path, token, code)
			}
		}
		code, body, _ := at(c.path, "s3cret")
		if code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("%s = %d %.200s, want 200 with %s", c.path, code, body, c.want)
		}
	}
	var got lineage.Graph
	if _, body, _ := at("/api/lineage", "s3cret"); json.Unmarshal([]byte(body), &got) != nil || len(got.Nodes) != 2 || len(got.Edges) != 1 || got.Nodes[1].Layer != 1 {
		t.Errorf("/api/lineage = %s, want the graph's 2 nodes and edge", body)
	}
	if code, _, h := at("/dbt-docs/", "s3cret"); code != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("/dbt-docs/ CSP %q: the docs may load from other hosts", h.Get("Content-Security-Policy"))
	}
	if code, _, _ := at("/dbt-docs/compiled/x.sql", "s3cret"); code != 404 {
		t.Errorf("/dbt-docs/ serves files beyond the docs site: %d", code)
	}
	broken = true
	if code, body, _ := at("/api/lineage", "s3cret"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no manifest") {
		t.Errorf("/api/lineage without a graph = %d %s, want 503 saying why", code, body)
	}
}
