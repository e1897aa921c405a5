// Package emf writes CloudWatch metrics as Embedded Metric Format log lines: a function prints one
// JSON line to stdout and CloudWatch Logs turns it into metrics, with no API call in the hot path
// and no extra IAM permission.
package emf

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every fin-orchestrator metric; template.yaml's alarms
// and dashboard read from it.
const Namespace = "FinOrchestrator"

// Units CloudWatch accepts that the project uses.
const (
	Count        = "Count"
	Milliseconds = "Milliseconds"
	Seconds      = "Seconds"
	Bytes        = "Bytes"
)

// Metric is one value with its unit.
type Metric struct {
	Name  string
	Value float64
	Unit  string
}

// Writer emits metric lines; safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	out io.Writer
	now func() time.Time
}

// New returns a Writer printing to out (os.Stdout in a Lambda).
func New(out io.Writer) *Writer { return &Writer{out: out, now: time.Now} }

// Emit writes one line holding metrics under the given dimensions (for example
// {"Function": "warehouse-loader"}).
func (w *Writer) Emit(dims map[string]string, metrics ...Metric) error {
	if w == nil || len(metrics) == 0 {
		return nil
	}
	type def struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	line := map[string]any{}
	keys := make([]string, 0, len(dims))
	for k, v := range dims {
		keys = append(keys, k)
		line[k] = v
	}
	sort.Strings(keys)
	defs := make([]def, 0, len(metrics))
	for _, m := range metrics {
		line[m.Name] = m.Value
		defs = append(defs, def{m.Name, m.Unit})
	}
	line["_aws"] = map[string]any{
		"Timestamp": w.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace": Namespace, "Dimensions": [][]string{keys}, "Metrics": defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.out.Write(append(b, '\n'))
	return err
}
