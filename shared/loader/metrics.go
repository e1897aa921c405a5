package loader

import (
	"encoding/json"
	"io"
	"maps"
	"sync"
	"time"
)

// counters count what the handler did. Safe for concurrent use.
type counters struct {
	mu            sync.Mutex
	ObjectsLoaded int64
	RowsLoaded    int64
	Replaced      int64 // objects rewritten under the same key, whose rows were replaced
	Duplicates    int64 // events for objects already loaded with that ETag
	DeadLetters   int64 // dlq/ objects, never loaded
	Ignored       int64 // events other than ObjectCreated (deletes, test events)
	Failures      map[string]int64
}

// Metrics are the handler's counts at one moment.
type Metrics struct {
	ObjectsLoaded, RowsLoaded, Replaced, Duplicates, DeadLetters, Ignored int64
	Failures                                                              map[string]int64
}

func newCounters() *counters { return &counters{Failures: map[string]int64{}} }

func (m *counters) inc(counter *int64) {
	m.mu.Lock()
	*counter++
	m.mu.Unlock()
}

func (m *counters) addRows(n int64) {
	m.mu.Lock()
	m.RowsLoaded += n
	m.mu.Unlock()
}

func (m *counters) fail(reason string) {
	m.mu.Lock()
	m.Failures[reason]++
	m.mu.Unlock()
}

func (m *counters) add(o *counters) {
	s := o.snapshot()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ObjectsLoaded += s.ObjectsLoaded
	m.RowsLoaded += s.RowsLoaded
	m.Replaced += s.Replaced
	m.Duplicates += s.Duplicates
	m.DeadLetters += s.DeadLetters
	m.Ignored += s.Ignored
	for r, n := range s.Failures {
		m.Failures[r] += n
	}
}

func (m *counters) snapshot() Metrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Metrics{
		ObjectsLoaded: m.ObjectsLoaded, RowsLoaded: m.RowsLoaded, Replaced: m.Replaced,
		Duplicates: m.Duplicates, DeadLetters: m.DeadLetters, Ignored: m.Ignored,
		Failures: maps.Clone(m.Failures),
	}
}

// FailureCount is the number of failed objects, all reasons together.
func (s Metrics) FailureCount() int64 {
	var n int64
	for _, c := range s.Failures {
		n += c
	}
	return n
}

// EMFNamespace is the CloudWatch namespace of the loader's metrics.
const EMFNamespace = "fin-orchestrator/loader"

// writeEMF writes one CloudWatch Embedded Metric Format line: the counts of one invocation, with
// failures as ObjectsFailed per Reason.
func writeEMF(w io.Writer, s Metrics, now time.Time) {
	type metric struct{ Name, Unit string }
	type directive struct {
		Namespace  string
		Dimensions [][]string
		Metrics    []metric
	}
	emit := func(fields map[string]any, dims [][]string, names ...string) {
		var ms []metric
		for _, n := range names {
			ms = append(ms, metric{n, "Count"})
		}
		fields["_aws"] = map[string]any{
			"Timestamp":         now.UnixMilli(),
			"CloudWatchMetrics": []directive{{Namespace: EMFNamespace, Dimensions: dims, Metrics: ms}},
		}
		b, _ := json.Marshal(fields)
		w.Write(append(b, '\n'))
	}
	emit(map[string]any{
		"ObjectsLoaded": s.ObjectsLoaded, "RowsLoaded": s.RowsLoaded, "ObjectsReplaced": s.Replaced,
		"DuplicateEvents": s.Duplicates, "DeadLetterObjects": s.DeadLetters, "IgnoredEvents": s.Ignored,
	}, [][]string{{}}, "ObjectsLoaded", "RowsLoaded", "ObjectsReplaced", "DuplicateEvents", "DeadLetterObjects", "IgnoredEvents")
	for r, n := range s.Failures {
		emit(map[string]any{"Reason": r, "ObjectsFailed": n}, [][]string{{"Reason"}}, "ObjectsFailed")
	}
}
