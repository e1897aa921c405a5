package console

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Sample is the pipeline's counters at one moment; the charts draw throughput per stage from
// the differences of consecutive samples, and the slot's lag as it is.
type Sample struct {
	At         time.Time `json:"at"`
	LagBytes   int64     `json:"lag_bytes"`
	LagSeconds float64   `json:"lag_seconds"`
	Captured   int64     `json:"captured"` // changes the capture sent to Kafka
	Landed     int64     `json:"landed"`   // records the landing wrote to bronze
	Loaded     int64     `json:"loaded"`   // rows the loader put in RAW
	// Published counts the rows loaded into RAW that a successful dbt build has since carried
	// to gold (what RAW held when that build's snapshot was taken).
	Published int64 `json:"published"`
}

// GoldPoint is one build's publication: how old the newest change in gold was then.
type GoldPoint struct {
	At         time.Time `json:"at"`
	LagSeconds float64   `json:"lag_seconds"`
}

// ChartData is what the charts draw: the last hour.
type ChartData struct {
	Samples []Sample `json:"samples"`
	// RawFreshness is commit to RAW per minute (p50, p95).
	RawFreshness []FreshnessPoint `json:"raw_freshness"`
	Gold         []GoldPoint      `json:"gold"`
}

// Charts gathers the chart data (the stack's from its sampler, status and run log).
type Charts func(ctx context.Context) ChartData

func chartsHandler(charts Charts) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := charts(r.Context())
		if d.Samples == nil {
			d.Samples = []Sample{}
		}
		if d.RawFreshness == nil {
			d.RawFreshness = []FreshnessPoint{}
		}
		if d.Gold == nil {
			d.Gold = []GoldPoint{}
		}
		body, _ := json.Marshal(d)
		writeJSON(w, body)
	}
}

// Samples keeps the samples of the last Window (an hour by default), oldest first.
type Samples struct {
	Window time.Duration
	mu     sync.Mutex
	buf    []Sample
}

// Add appends s and forgets what is older than the window before it.
func (r *Samples) Add(s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	window := r.Window
	if window == 0 {
		window = time.Hour
	}
	cut := 0
	for cut < len(r.buf) && s.At.Sub(r.buf[cut].At) > window {
		cut++
	}
	r.buf = append(r.buf[cut:], s)
}

// All returns a copy of the samples kept.
func (r *Samples) All() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.buf...)
}
