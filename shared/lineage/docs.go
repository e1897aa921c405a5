package lineage

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Docs is `dbt docs generate` output, made on demand and served offline. It needs no warehouse:
// the catalog is left empty (--empty-catalog) and models compile against a scratch DuckDB file,
// so it runs beside a stack that holds the real one.
type Docs struct {
	DBT        string // the dbt executable
	ProjectDir string // dbt/ (profiles.yml is there too)
	Dir        string // where the docs are written (a dbt target path)
	// Nice, above 0, runs dbt under nice(1) at that priority, as the stack runs its builds.
	Nice int

	mu sync.Mutex
}

// docFiles are what the docs site reads: the page, and the two files it fetches beside it.
var docFiles = map[string]bool{"index.html": true, "manifest.json": true, "catalog.json": true}

// Generate runs dbt docs generate into Dir, unless it has run already and force is false.
func (d *Docs) Generate(ctx context.Context, force bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	index := filepath.Join(d.Dir, "index.html")
	if _, err := os.Stat(index); err == nil && !force {
		return nil
	}
	args := []string{d.DBT, "docs", "generate", "--empty-catalog", "--profiles-dir", d.ProjectDir,
		"--target-path", d.Dir, "--log-path", filepath.Join(d.Dir, "logs")}
	if d.Nice > 0 {
		args = append([]string{"nice", "-n", strconv.Itoa(d.Nice)}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = d.ProjectDir
	// The profile's defaults for RAW (an empty in-memory database), whatever the stack's own
	// environment says: the docs must not open a warehouse file the stack holds.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains([]string{"DBT_TARGET", "WAREHOUSE_PATH", "RAW_SNAPSHOT_PATH", "RAW_DATABASE"}, name)
	})
	cmd.Env = append(cmd.Env, "DBT_TARGET=duckdb", "WAREHOUSE_PATH="+filepath.Join(d.Dir, "scratch.duckdb"),
		"DBT_SEND_ANONYMOUS_USAGE_STATS=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("dbt docs generate in %s: %w: %s", d.Dir, err, tail(out, 2000))
	}
	return offline(index)
}

// offline rewrites what the page would load from another host (dbt docs adds a Snowplow tracker
// script from a CDN) to an empty data: URL, and fails if anything is left.
func offline(index string) error {
	body, err := os.ReadFile(index)
	if err != nil {
		return fmt.Errorf("dbt docs: %w", err)
	}
	body = externalRef.ReplaceAllFunc(body, func(m []byte) []byte {
		url := externalRef.FindSubmatch(m)[1]
		return bytes.Replace(m, url, []byte("data:,"), 1)
	})
	if refs := ExternalRefs(body); len(refs) > 0 {
		return fmt.Errorf("dbt docs: %s still loads from outside: %q", index, refs)
	}
	return os.WriteFile(index, body, 0o644)
}

func tail(b []byte, n int) []byte { return b[max(0, len(b)-n):] }

// externalRef matches what a page would fetch from another host: a src or href attribute, a CSS
// url() or @import, or a script's fetch/XHR of an absolute http(s) or protocol-relative URL.
// Links in comments or messages (https://errors.angularjs.org/...) fetch nothing and do not match.
// A loopback URL (AngularJS parses "http://[::1]" with an anchor element) is not another host.
var externalRef = regexp.MustCompile(`(?i)(?:\bsrc\s*=\s*|\bhref\s*=\s*|url\(\s*|@import\s+|fetch\(\s*|\.open\(\s*["']GET["']\s*,\s*)["']?((?:https?:)?//(?:[^\[/"')\s>]|\[[^\]]*[^\]:1][^\]]*\])[^"')\s>]*)`)

// ExternalRefs lists the URLs of other hosts that a page would load.
func ExternalRefs(html []byte) []string {
	var out []string
	for _, m := range externalRef.FindAllSubmatch(html, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// Handler serves the docs (mount it at /dbt-docs/ with the prefix stripped), generating them on
// the first request. ?regenerate=1 makes them again after the project changed.
func (d *Docs) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" {
			name = "index.html"
		}
		if !docFiles[name] {
			http.NotFound(w, r)
			return
		}
		if err := d.Generate(r.Context(), r.URL.Query().Get("regenerate") != ""); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		// dbt's docs site is one page with inline scripts (AngularJS, which evaluates its
		// templates): allow those, and nothing from any other host.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:")
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFile(w, r, filepath.Join(d.Dir, name))
	})
}
