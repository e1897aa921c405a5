package lineage

import (
	"fmt"
	"strings"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// AddCapture adds, for each captured table, the way its changes take to its RAW source, as the
// template wires it: table -> topic (each topic a function's Kafka event reads whose last segment
// is the table, as Debezium names them) -> that function's mapping -> the bronze prefix the
// landing writes the table's objects under (bronze.ObjectKey) -> each S3 notification whose
// filter takes those objects -> the dbt source of the RAW table. A table without a topic, a
// landing, a loader or a source is an error naming what is missing.
func (g *Graph) AddCapture(tpl *samtemplate.Template, tables []string) error {
	for _, table := range tables {
		if err := g.addTable(tpl, table); err != nil {
			return fmt.Errorf("lineage of table %s: %w", table, err)
		}
	}
	return nil
}

func (g *Graph) addTable(tpl *samtemplate.Template, table string) error {
	source := g.rawSource(table)
	if source == "" {
		return fmt.Errorf("the dbt manifest has no source for raw.%s", table)
	}
	g.add(Node{ID: "table:public." + table, Kind: Table, Name: "public." + table, Detail: "Postgres"})
	// A sample key of the table's objects: what the loader's filters are tried on, and the prefix
	// the landing writes under.
	key := bronze.ObjectKey(table, "00000000", "p.public."+table, 0, 0, 0, time.Unix(0, 0))
	prefix := key[:strings.Index(key, "/dt=")+1]
	prefixID := "bronze:" + prefix
	landings, loaders := 0, 0
	for _, id := range tpl.Names() {
		f := tpl.Functions[id]
		for _, ev := range f.Kafka {
			for _, topic := range ev.Topics {
				if topic[strings.LastIndex(topic, ".")+1:] != table {
					continue
				}
				g.add(Node{ID: "topic:" + topic, Kind: Topic, Name: topic, Detail: "Kafka"})
				g.edge("table:public."+table, "topic:"+topic)
				landing := "landing:" + id + "/" + ev.Name
				g.add(Node{ID: landing, Kind: Landing, Name: id, Detail: condition(f, "event "+ev.Name)})
				g.edge("topic:"+topic, landing)
				g.add(Node{ID: prefixID, Kind: Bronze, Name: prefix, Detail: "S3 Parquet"})
				g.edge(landing, prefixID)
				landings++
			}
		}
		for _, ev := range f.S3 {
			if !takes(ev, key) {
				continue
			}
			loader := "loader:" + id + "/" + ev.Name + "/" + table
			g.add(Node{ID: loader, Kind: Loader, Name: id, Detail: condition(f, "S3 event "+ev.Name+" into raw."+table)})
			g.edge(prefixID, loader)
			g.edge(loader, source)
			loaders++
		}
	}
	switch {
	case landings == 0:
		return fmt.Errorf("no function of the template reads a topic of it")
	case loaders == 0:
		return fmt.Errorf("no S3 notification of the template takes its objects (%s...)", prefix)
	}
	return nil
}

// takes reports whether the S3 event's key filter matches key.
func takes(ev samtemplate.S3Event, key string) bool {
	for _, r := range ev.Rules {
		switch strings.ToLower(r.Name) {
		case "prefix":
			if !strings.HasPrefix(key, r.Value) {
				return false
			}
		case "suffix":
			if !strings.HasSuffix(key, r.Value) {
				return false
			}
		}
	}
	return strings.HasPrefix(key, ev.Prefix) && strings.HasSuffix(key, ev.Suffix)
}

func condition(f *samtemplate.Function, detail string) string {
	if f.Condition != "" {
		return detail + " (if " + f.Condition + ")"
	}
	return detail
}
