package lambdalocal

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/eventsource"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// LoadTemplate reads a SAM template with params and holds it to the rules AWS enforces on deploy
// (samtemplate.Check): a template AWS would refuse is refused here, before anything starts, with
// each property and the rule it breaks.
func LoadTemplate(path string, params map[string]string) (*samtemplate.Template, error) {
	tpl, err := samtemplate.Load(path, params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := tpl.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tpl, nil
}

// TemplateFunction wraps the handler of the template's function id with that function's timeout
// and reserved concurrency.
func TemplateFunction(tpl *samtemplate.Template, id string, handler any) *Function {
	f := NewFunction(id, handler, time.Duration(tpl.Functions[id].Timeout)*time.Second)
	f.Reserved = tpl.Functions[id].ReservedConcurrency
	return f
}

// KafkaMappings are the event source mappings of a function's MSK events, as Lambda makes them:
// one per event, each on its one topic with its own consumer group (LoadTemplate has held each
// to a single topic and a unique group id).
func KafkaMappings(f *samtemplate.Function, brokers []string, clusterARN string, log *slog.Logger) []eventsource.Config {
	var out []eventsource.Config
	for _, k := range f.Kafka {
		group := k.ConsumerGroupID
		if group == "" {
			group = f.LogicalID + "-" + k.Name // AWS would take the mapping's UUID
		}
		out = append(out, eventsource.Config{Brokers: brokers, Topic: k.Topics[0], GroupID: group,
			BatchSize: k.BatchSize, BatchingWindow: time.Duration(k.MaxBatchingWindow) * time.Second,
			EventSource: eventsource.SourceMSK, EventSourceARN: clusterARN,
			StartAtLatest: k.StartingPosition == "LATEST", Timeout: time.Duration(f.Timeout) * time.Second,
			Logger: log})
	}
	return out
}
