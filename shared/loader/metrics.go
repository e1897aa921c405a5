package loader

import (
	"io"
	"maps"
	"sync"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/emf"
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
	// The RAW tables that got rows, and those of duplicate events (whose rows an earlier
	// invocation committed), for the build requests; not metrics.
	loadedTables, duplicateTables map[string]bool
}

// Metrics are the handler's counts at one moment.
type Metrics struct {
	ObjectsLoaded, RowsLoaded, Replaced, Duplicates, DeadLetters, Ignored int64
	Failures                                                              map[string]int64
}

func newCounters() *counters {
	return &counters{Failures: map[string]int64{}, loadedTables: map[string]bool{}, duplicateTables: map[string]bool{}}
}

// touched notes that table got rows in this invocation (duplicate: in an earlier one).
func (m *counters) touched(table string, duplicate bool) {
	m.mu.Lock()
	if duplicate {
		m.duplicateTables[table] = true
	} else {
		m.loadedTables[table] = true
	}
	m.mu.Unlock()
}

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

// writeEMF writes the counts of one invocation as CloudWatch Embedded Metric Format lines in the
// project's namespace (template.yaml's alarms and dashboard read them): one line of totals, with
// latency the age of the oldest event loaded, then ObjectsFailed per Reason.
func writeEMF(w io.Writer, s Metrics, latency time.Duration) {
	out := emf.New(w)
	fn := map[string]string{"Function": "warehouse-loader"}
	out.Emit(fn,
		emf.Metric{Name: "ObjectsLoaded", Value: float64(s.ObjectsLoaded), Unit: emf.Count},
		emf.Metric{Name: "RowsLoaded", Value: float64(s.RowsLoaded), Unit: emf.Count},
		emf.Metric{Name: "ObjectsReplaced", Value: float64(s.Replaced), Unit: emf.Count},
		emf.Metric{Name: "DuplicateEvents", Value: float64(s.Duplicates), Unit: emf.Count},
		emf.Metric{Name: "DeadLetterObjects", Value: float64(s.DeadLetters), Unit: emf.Count},
		emf.Metric{Name: "ObjectsFailed", Value: float64(s.FailureCount()), Unit: emf.Count},
		emf.Metric{Name: "LoadLatency", Value: float64(latency.Milliseconds()), Unit: emf.Milliseconds})
	for r, n := range s.Failures {
		out.Emit(map[string]string{"Function": "warehouse-loader", "Reason": r},
			emf.Metric{Name: "ObjectsFailed", Value: float64(n), Unit: emf.Count})
	}
}
