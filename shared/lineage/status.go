package lineage

import (
	"encoding/json"
	"fmt"
	"time"
)

// runResults is the part of dbt's run_results.json the graph needs.
type runResults struct {
	Metadata struct {
		GeneratedAt time.Time `json:"generated_at"`
	} `json:"metadata"`
	Results []struct {
		UniqueID      string  `json:"unique_id"`
		Status        string  `json:"status"`
		ExecutionTime float64 `json:"execution_time"`
		Timing        []struct {
			Name        string    `json:"name"`
			CompletedAt time.Time `json:"completed_at"`
		} `json:"timing"`
		AdapterResponse struct {
			RowsAffected *int64 `json:"rows_affected"`
		} `json:"adapter_response"`
	} `json:"results"`
}

// ApplyRunResults sets each node's status, build time, duration and rows affected from dbt's
// run_results.json. A result for a node the manifest lacks is skipped (the project changed since).
func (g *Graph) ApplyRunResults(body []byte) error {
	var rr runResults
	if err := json.Unmarshal(body, &rr); err != nil {
		return fmt.Errorf("read dbt run_results: %w", err)
	}
	if !rr.Metadata.GeneratedAt.IsZero() {
		g.Built = &rr.Metadata.GeneratedAt
	}
	for _, r := range rr.Results {
		n := g.Node(r.UniqueID)
		if n == nil {
			continue
		}
		n.Status, n.Seconds, n.RowsAffected = r.Status, r.ExecutionTime, r.AdapterResponse.RowsAffected
		for _, t := range r.Timing {
			if t.Name == "execute" && !t.CompletedAt.IsZero() {
				at := t.CompletedAt
				n.BuiltAt = &at
			}
		}
	}
	return nil
}

// SetRows records a node's row count; an unknown id is ignored.
func (g *Graph) SetRows(id string, rows int64) {
	if n := g.Node(id); n != nil {
		n.Rows = &rows
	}
}

// SetFresh records when a node last took data; an unknown id is ignored.
func (g *Graph) SetFresh(id string, at time.Time) {
	if n := g.Node(id); n != nil {
		n.FreshAt = &at
	}
}

// RawSourceID is the id of the dbt source of table's RAW table, or "" when there is none.
func (g *Graph) RawSourceID(table string) string { return g.rawSource(table) }

// failed is true for dbt statuses after which dbt build skips what depends on the node.
func failed(status string) bool { return status == "fail" || status == "error" }

// Finish lays the graph out in layers, counts each node's tests, and marks what each failed test
// or model blocks: everything downstream of the tested (or failed) node, as dbt build skips it,
// and the tests of those nodes.
func (g *Graph) Finish() {
	children := map[string][]string{}
	parents := map[string][]string{}
	for _, e := range g.Edges {
		children[e.From] = append(children[e.From], e.To)
		parents[e.To] = append(parents[e.To], e.From)
	}
	g.layers(parents)
	for _, n := range g.Nodes {
		if n.Kind == Test {
			for _, p := range parents[n.ID] {
				if failed(n.Status) {
					g.Node(p).TestsFailed++
				} else if n.Status == "pass" || n.Status == "warn" {
					g.Node(p).TestsPassed++
				}
			}
		}
	}
	for _, n := range g.Nodes {
		switch {
		case n.Kind == Test && failed(n.Status):
			for _, p := range parents[n.ID] {
				g.block(p, n.ID, children)
			}
		case n.Kind == Model && failed(n.Status):
			g.block(n.ID, n.ID, children)
		}
	}
}

// block marks every node below from, with their tests, as blocked by cause: a failed test of
// from (whose other tests still run), or from itself, a failed model.
func (g *Graph) block(from, cause string, children map[string][]string) {
	seen := map[string]bool{from: true}
	next := []string{from}
	for len(next) > 0 {
		id := next[0]
		next = next[1:]
		for _, c := range children[id] {
			n := g.Node(c)
			if seen[c] || n.Kind == Test && id == from && cause != from {
				continue // the tested node's other tests still run; a failed model's do not
			}
			seen[c] = true
			n.BlockedBy = appendNew(n.BlockedBy, cause)
			if n.Kind != Test {
				next = append(next, c)
			}
		}
	}
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// layers sets each node's layer: the longest path to it (tests: their parent's layer).
func (g *Graph) layers(parents map[string][]string) {
	memo := map[string]int{}
	var layer func(id string, depth int) int
	layer = func(id string, depth int) int {
		if l, ok := memo[id]; ok {
			return l
		}
		l := 0
		if depth <= len(g.Nodes) { // a cycle (not in a valid manifest) cannot recurse forever
			for _, p := range parents[id] {
				if g.Node(p).Kind != Test {
					l = max(l, layer(p, depth+1)+1)
				}
			}
		}
		memo[id] = l
		return l
	}
	for i := range g.Nodes {
		g.Nodes[i].Layer = layer(g.Nodes[i].ID, 0)
		if g.Nodes[i].Kind == Test {
			g.Nodes[i].Layer = max(0, g.Nodes[i].Layer-1)
		}
	}
}

// MergeRunResults keeps, per node, its latest result: next's where it ran, prev's otherwise, under
// next's metadata. A build triggered by a load selects only what follows its tables and dbt
// rewrites run_results.json each run, so the last file alone would forget an earlier failure.
func MergeRunResults(prev, next []byte) ([]byte, error) {
	type results struct {
		Metadata json.RawMessage   `json:"metadata"`
		Results  []json.RawMessage `json:"results"`
	}
	id := func(r json.RawMessage) string {
		var n struct {
			UniqueID string `json:"unique_id"`
		}
		json.Unmarshal(r, &n)
		return n.UniqueID
	}
	var p, n results
	if err := json.Unmarshal(next, &n); err != nil {
		return nil, fmt.Errorf("read dbt run_results: %w", err)
	}
	if len(prev) > 0 {
		if err := json.Unmarshal(prev, &p); err != nil {
			return nil, fmt.Errorf("read earlier dbt run_results: %w", err)
		}
	}
	ran := map[string]bool{}
	for _, r := range n.Results {
		ran[id(r)] = true
	}
	for _, r := range p.Results {
		if !ran[id(r)] {
			n.Results = append(n.Results, r)
		}
	}
	return json.Marshal(n)
}
