// Package lineage builds the pipeline's lineage graph, from the captured Postgres tables through
// their topics, the landing function, bronze, the loader and RAW to dbt's models, tests and
// exposures (the API's history endpoints). The capture half comes from the SAM template (which
// function reads which topic, which S3 notification feeds the loader), the dbt half from dbt's
// manifest.json; neither is written by hand. run_results.json adds each dbt node's last build,
// and a failed test or model marks what dbt skips below it as blocked.
package lineage

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Kind is what a node is.
type Kind string

const (
	Table    Kind = "table"    // a captured Postgres table
	Topic    Kind = "topic"    // its Kafka topic
	Landing  Kind = "landing"  // a landing function's event source mapping of that topic
	Bronze   Kind = "bronze"   // the bronze prefix its objects land under
	Loader   Kind = "loader"   // the loader's S3 notification for that prefix
	Source   Kind = "source"   // a dbt source (RAW)
	Model    Kind = "model"    // a dbt model (silver, gold)
	Test     Kind = "test"     // a dbt data test
	Exposure Kind = "exposure" // a dbt exposure (an API endpoint)
)

// Node is one step of the lineage with what is known of its state.
type Node struct {
	ID     string `json:"id"`
	Kind   Kind   `json:"kind"`
	Name   string `json:"name"`
	Detail string `json:"detail,omitempty"`
	// Layer is the node's column, left to right: the longest path to it from a node without
	// parents (tests sit in their parent's column).
	Layer int `json:"layer"`
	// Status is dbt's status of the node in the last run_results.json (success, error, skipped,
	// pass, fail, warn); empty when the last build did not include it.
	Status       string     `json:"status,omitempty"`
	BuiltAt      *time.Time `json:"built_at,omitempty"`
	Seconds      float64    `json:"seconds,omitempty"`
	RowsAffected *int64     `json:"rows_affected,omitempty"`
	// Rows is the node's row count where the stack counts it cheaply.
	Rows *int64 `json:"rows,omitempty"`
	// FreshAt is when the node last took data (RAW: the last load of its table).
	FreshAt     *time.Time `json:"fresh_at,omitempty"`
	TestsPassed int        `json:"tests_passed,omitempty"`
	TestsFailed int        `json:"tests_failed,omitempty"`
	// BlockedBy names the failed tests and models above this node: dbt build skips it.
	BlockedBy []string `json:"blocked_by,omitempty"`
}

// Blocked is true when a failure upstream stops dbt from building the node.
func (n Node) Blocked() bool { return len(n.BlockedBy) > 0 }

// Edge is data flowing From one node To another.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Graph is the lineage. Build it with FromManifest, AddCapture and ApplyRunResults, then Finish.
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
	// Built is when run_results.json was written (the last dbt build), if known.
	Built *time.Time `json:"built,omitempty"`
	index map[string]int
}

// Node returns the node with id, or nil.
func (g *Graph) Node(id string) *Node {
	if i, ok := g.index[id]; ok {
		return &g.Nodes[i]
	}
	return nil
}

func (g *Graph) add(n Node) *Node {
	if g.index == nil {
		g.index = map[string]int{}
	}
	if i, ok := g.index[n.ID]; ok {
		return &g.Nodes[i]
	}
	g.index[n.ID] = len(g.Nodes)
	g.Nodes = append(g.Nodes, n)
	return &g.Nodes[len(g.Nodes)-1]
}

func (g *Graph) edge(from, to string) {
	e := Edge{From: from, To: to}
	if !slices.Contains(g.Edges, e) {
		g.Edges = append(g.Edges, e)
	}
}

// manifest is the part of dbt's manifest.json the graph needs.
type manifest struct {
	Nodes     map[string]manifestNode `json:"nodes"`
	Sources   map[string]manifestNode `json:"sources"`
	Exposures map[string]manifestNode `json:"exposures"`
}

type manifestNode struct {
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
	Label        string `json:"label"`
	Schema       string `json:"schema"`
	SourceName   string `json:"source_name"`
	Identifier   string `json:"identifier"`
	DependsOn    struct {
		Nodes []string `json:"nodes"`
	} `json:"depends_on"`
}

// FromManifest starts a graph from dbt's manifest.json: its sources, models, tests and
// exposures, with an edge from each node to each that depends on it.
func FromManifest(body []byte) (*Graph, error) {
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("read dbt manifest: %w", err)
	}
	g := &Graph{}
	for _, id := range slices.Sorted(maps.Keys(m.Sources)) {
		s := m.Sources[id]
		g.add(Node{ID: id, Kind: Source, Name: s.SourceName + "." + s.Name, Detail: s.Schema + "." + cmp.Or(s.Identifier, s.Name)})
	}
	kinds := map[string]Kind{"model": Model, "test": Test}
	var deps []manifestNode
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(m.Nodes)) {
		n := m.Nodes[id]
		kind, ok := kinds[n.ResourceType]
		if !ok {
			continue // seeds, snapshots, analyses, operations: none in this project's flow
		}
		g.add(Node{ID: id, Kind: kind, Name: n.Name, Detail: n.Schema})
		deps, ids = append(deps, n), append(ids, id)
	}
	for _, id := range slices.Sorted(maps.Keys(m.Exposures)) {
		e := m.Exposures[id]
		g.add(Node{ID: id, Kind: Exposure, Name: cmp.Or(e.Label, e.Name), Detail: e.Name})
		deps, ids = append(deps, e), append(ids, id)
	}
	for i, n := range deps {
		for _, up := range n.DependsOn.Nodes {
			if g.Node(up) == nil {
				return nil, fmt.Errorf("read dbt manifest: %s depends on %s, which the manifest lacks", ids[i], up)
			}
			g.edge(up, ids[i])
		}
	}
	return g, nil
}

// rawSource is the dbt source that reads the RAW table the loader fills for table: schema raw,
// table (or identifier) named after it.
func (g *Graph) rawSource(table string) string {
	for _, n := range g.Nodes {
		if n.Kind == Source && strings.EqualFold(n.Detail, "raw."+table) {
			return n.ID
		}
	}
	return ""
}

// Reaches reports whether a path leads from one node to another.
func (g *Graph) Reaches(from, to string) bool {
	seen := map[string]bool{from: true}
	next := []string{from}
	for len(next) > 0 {
		id := next[0]
		next = next[1:]
		if id == to {
			return true
		}
		for _, e := range g.Edges {
			if e.From == id && !seen[e.To] {
				seen[e.To] = true
				next = append(next, e.To)
			}
		}
	}
	return false
}
