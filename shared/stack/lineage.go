package stack

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/lineage"
)

// lineageHandlers are the console's lineage view: the graph from the dbt-runner's target (the
// manifest and run_results.json of the last build) and the template, and dbt docs, generated on
// first request under StateDir/dbt/docs.
func (s *Stack) lineageHandlers() map[string]http.Handler {
	docs := &lineage.Docs{DBT: filepath.Join(s.cfg.Root, ".venv", "bin", "dbt"), ProjectDir: filepath.Join(s.cfg.Root, "dbt"),
		Dir: filepath.Join(s.cfg.StateDir, "dbt", "docs"), Nice: dbtNice}
	graph := func(ctx context.Context) (*lineage.Graph, error) { return s.lineage(ctx, docs) }
	return console.LineageHandlers(s.token, &s.codes, graph, docs.Handler())
}

// mergeRunResults folds the build that just ended into s.runResults, the latest result of every
// node (see lineage.MergeRunResults).
func (s *Stack) mergeRunResults() {
	next, err := os.ReadFile(filepath.Join(s.cfg.StateDir, "dbt", "target", "run_results.json"))
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if merged, err := lineage.MergeRunResults(s.runResults, next); err == nil {
		s.runResults = merged
	} else {
		s.log.Warn("lineage: run results", "err", err)
	}
}

// lineage builds the graph. Before the first build there is no run manifest: the docs' stands in.
func (s *Stack) lineage(ctx context.Context, docs *lineage.Docs) (*lineage.Graph, error) {
	target := filepath.Join(s.cfg.StateDir, "dbt", "target")
	manifest, err := os.ReadFile(filepath.Join(target, "manifest.json"))
	if errors.Is(err, fs.ErrNotExist) {
		if err := docs.Generate(ctx, false); err != nil {
			return nil, err
		}
		manifest, err = os.ReadFile(filepath.Join(docs.Dir, "manifest.json"))
	}
	if err != nil {
		return nil, err
	}
	g, err := lineage.FromManifest(manifest)
	if err != nil {
		return nil, err
	}
	if err := g.AddCapture(s.tpl, capturedTables); err != nil {
		return nil, err
	}
	s.mu.Lock()
	rr := s.runResults
	s.mu.Unlock()
	if rr == nil { // no build since fin up started: the last one's file
		rr, _ = os.ReadFile(filepath.Join(target, "run_results.json"))
	}
	if rr != nil {
		if err := g.ApplyRunResults(rr); err != nil {
			return nil, err
		}
	}
	for _, t := range s.status.get(ctx).Tables {
		g.SetRows("table:public."+t.Table, t.Postgres)
	}
	s.addRawCounts(ctx, g)
	g.Finish()
	return g, nil
}

// addRawCounts sets each RAW source's rows and last load from the load ledger (one small
// query); while dbt holds the warehouse they stay unknown rather than wait.
func (s *Stack) addRawCounts(ctx context.Context, g *lineage.Graph) {
	rows, err := s.status.query(ctx, `SELECT source_table, sum(row_count), epoch_ms(max(loaded_at)) FROM raw._load_ledger GROUP BY 1`)
	if err != nil {
		s.log.Debug("lineage: RAW counts", "err", err)
		return
	}
	for _, r := range rows {
		id := g.RawSourceID(r[0])
		if n, err := strconv.ParseInt(r[1], 10, 64); err == nil {
			g.SetRows(id, n)
		}
		if ms, err := strconv.ParseInt(r[2], 10, 64); err == nil {
			g.SetFresh(id, time.UnixMilli(ms))
		}
	}
}
