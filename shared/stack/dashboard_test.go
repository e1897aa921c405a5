package stack

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDashboardHasTheConsolesViews: template.yaml's CloudWatch dashboard shows each console view
// from the metrics the functions write (docs/operations.md, "The console in AWS", lists the same
// mapping): each row names a widget by its title's start and a metric it must plot.
func TestDashboardHasTheConsolesViews(t *testing.T) {
	widgets := dashboardWidgets(t)
	for _, tc := range []struct{ view, widget, metric string }{
		{"health", "Health: function errors", `"Errors"`},
		{"health", "Health: function errors", `"ObjectsFailed"`},
		{"health (DLQ)", "Health: DLQ", `"DLQRecords"`},
		{"health (failed invocations)", "Health: DLQ", `FailedInvocations.QueueName`},
		{"replication lag", "Replication lag", `"OldestReplicationSlotLag"`},
		{"freshness", "Freshness", `"LoadLatency"`},
		{"throughput", "Throughput", `"RecordsLanded"`},
		{"throughput", "Throughput", `"RowsLoaded"`},
		{"dbt runs", "dbt runs", `"DbtModelsBuilt"`},
		{"dbt runs", "dbt runs", `"DbtTestsFailed"`},
		{"dbt runs", "dbt runs", `"DbtBuildSeconds"`},
		{"API requests", "API: requests by route", `MetricName=\"Requests\"`},
		{"API latency", "API: p95 latency", `MetricName=\"Latency\"`},
		{"API 4xx", "API: 4xx and 5xx", `MetricName=\"Errors4xx\"`},
		{"API 5xx", "API: 4xx and 5xx", `MetricName=\"Errors5xx\"`},
	} {
		w, ok := widgets[tc.widget]
		if !ok {
			t.Errorf("%s: the dashboard has no widget titled %q…", tc.view, tc.widget)
			continue
		}
		if !strings.Contains(w, tc.metric) {
			t.Errorf("%s: widget %q does not plot %s: %s", tc.view, tc.widget, tc.metric, w)
		}
	}
}

// dashboardWidgets reads the Dashboard's body (its !Sub variables replaced) as JSON: each metric
// widget's metrics, as JSON text, by the start of its title that the test names.
func dashboardWidgets(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				DashboardBody yaml.Node `yaml:"DashboardBody"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(raw, &tpl); err != nil {
		t.Fatal(err)
	}
	var body string
	for _, r := range tpl.Resources {
		if r.Type == "AWS::CloudWatch::Dashboard" {
			body = r.Properties.DashboardBody.Value
		}
	}
	if body == "" {
		t.Fatal("template.yaml has no AWS::CloudWatch::Dashboard with a DashboardBody")
	}
	body = regexp.MustCompile(`\$\{[A-Za-z0-9:.]+\}`).ReplaceAllStringFunc(body, func(v string) string { return v[2 : len(v)-1] })
	var d struct {
		Widgets []struct {
			Type       string
			Properties struct {
				Title   string
				Metrics json.RawMessage
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("the dashboard body is not JSON: %v", err)
	}
	out := map[string]string{}
	for _, w := range d.Widgets {
		for _, prefix := range []string{"Health: function errors", "Health: DLQ", "Replication lag", "Freshness", "Throughput",
			"dbt runs", "API: requests by route", "API: p95 latency", "API: 4xx and 5xx"} {
			if w.Type == "metric" && strings.HasPrefix(w.Properties.Title, prefix) {
				out[prefix] = string(w.Properties.Metrics)
			}
		}
	}
	return out
}
