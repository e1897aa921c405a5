package runtime

import (
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/eventsource"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// localParams are the template parameters of the local stack: the MSK variant of the landing,
// on a local cluster ARN.
var localParams = map[string]string{"Stage": "local", "MskClusterArn": "arn:aws:kafka:us-east-1:000000000000:cluster/local/embedded"}

// LoadTemplate reads a SAM template as `fin up` runs it and holds it to the rules AWS enforces on
// deploy (samtemplate.Check): a template AWS would refuse stops the stack before anything starts,
// with each property and the rule it breaks. `fin up --check` runs exactly this. params add to
// (and override) the local stack's template parameters.
func LoadTemplate(path string, params map[string]string) (*samtemplate.Template, error) {
	all := maps.Clone(localParams)
	maps.Copy(all, params)
	tpl, err := samtemplate.Load(path, all)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := tpl.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tpl, nil
}

// kafkaMappings are the event source mappings of a function's MSK events, as Lambda makes them:
// one per event, each on its one topic with its own consumer group (LoadTemplate has held each
// to a single topic and a unique group id).
func kafkaMappings(f *samtemplate.Function, brokers []string, clusterARN string, log *slog.Logger) []eventsource.Config {
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

// groupsByTopic is, for the landed gate, which consumer groups land each topic.
func groupsByTopic(mappings []eventsource.Config) map[string][]string {
	out := map[string][]string{}
	for _, m := range mappings {
		out[m.Topic] = append(out[m.Topic], m.GroupID)
	}
	return out
}
