package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/runlog"
)

// Run is one dbt build as the console keeps it (in the run log, so across restarts).
type Run struct {
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// Trigger is "schedule" (the EventBridge rule) or "loads" (build requests of loads that
	// committed, from the SQS queue).
	Trigger       string `json:"trigger"`
	Selector      string `json:"selector,omitempty"`
	OK            bool   `json:"ok"`
	Models        int    `json:"models"`
	ModelsFailed  int    `json:"models_failed"`
	ModelsSkipped int    `json:"models_skipped"`
	TestsPassed   int    `json:"tests_passed"`
	TestsFailed   int    `json:"tests_failed"`
	TestsSkipped  int    `json:"tests_skipped"`
	// RowsAffected sums the models' adapter_response rows_affected: Snowflake reports it,
	// dbt-duckdb does not (absent then).
	RowsAffected *int64  `json:"rows_affected,omitempty"`
	Seconds      float64 `json:"seconds"`
	// TurnSeconds is how long the build waited, before dbt started, for its warehouse turn (the
	// snapshot of RAW it reads): part of a change's way to gold that Seconds leaves out.
	TurnSeconds float64 `json:"turn_seconds,omitempty"`
	Error       string  `json:"error,omitempty"`
	// GoldLagSeconds is how old the newest change in gold was when this build published it: its
	// end less the newest commit in the RAW snapshot it read (absent when RAW was empty).
	GoldLagSeconds *float64 `json:"gold_lag_seconds,omitempty"`
	// Cut is gold's consistent cut after this build, when it built gold.cut.
	Cut *Cut `json:"cut,omitempty"`
}

// Cut is where gold's consistent cut stood after a build (docs/dbt.md, "Gold is a consistent
// cut"): every gold model shows the source as of LSN, committed at CommitTime, LagSeconds before
// the build started (both absent before the first whole transaction).
type Cut struct {
	LSN        int64      `json:"lsn"`
	CommitTime *time.Time `json:"commit_ts,omitempty"`
	LagSeconds *float64   `json:"lag_seconds,omitempty"`
}

// RunDetail is what a run did to each node, and its part of dbt's console log.
type RunDetail struct {
	Nodes []RunNode `json:"nodes"`
	Log   string    `json:"log"`
	// LogCut is set when the log was longer than the console keeps (its start and end stay).
	LogCut bool `json:"log_cut,omitempty"`
}

// RunNode is one model, test, seed or snapshot of a run, from dbt's run_results.json.
type RunNode struct {
	ID           string     `json:"id"`
	Kind         string     `json:"kind"`
	Status       string     `json:"status"`
	Seconds      float64    `json:"seconds"`
	RowsAffected *int64     `json:"rows_affected,omitempty"`
	Failures     *int64     `json:"failures,omitempty"`
	Message      string     `json:"message,omitempty"`
	Started      *time.Time `json:"started,omitempty"`
	Completed    *time.Time `json:"completed,omitempty"`
}

// Batch is one object the landing wrote: a partition's records from First to Last, as bronze
// Parquet, or one record as a dead letter.
type Batch struct {
	At        time.Time `json:"at"`
	Object    string    `json:"object"`
	Kind      string    `json:"kind"` // "bronze" or "dlq"
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	First     int64     `json:"first_offset"`
	Last      int64     `json:"last_offset"`
	Bytes     int64     `json:"bytes"`
}

// DLQItem is a dead letter as the DLQ view lists it.
type DLQItem struct {
	Key       string `json:"key"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Reason    string `json:"reason"`
	Bytes     int64  `json:"bytes"`
}

// DLQ reads the dead letters: a page of them after a key (S3 lists in key order), and one
// entry's body with its original bytes.
type DLQ interface {
	List(ctx context.Context, after string, limit int) ([]DLQItem, error)
	Read(ctx context.Context, key string) (json.RawMessage, error)
}

// Records reads the run log (runlog.Log).
type Records interface {
	Page(kind string, before uint64, limit int) ([]runlog.Entry, error)
	Get(kind string, key uint64) ([]byte, error)
}

// Page sizes: the default, and the most one request may ask for.
const (
	pageDefault = 50
	pageMax     = 500
)

// RunsHandlers are the endpoints of the runs, loads, landing and DLQ views, authorised as the
// page is. Every list takes ?limit= and a cursor: ?before=<id> (the run log, newest first; each
// item's "id") or ?after=<key> (the DLQ, in object key order), the last one of the previous page;
// the answer's "next" is the cursor of the page after it, absent on the last page.
func RunsHandlers(token string, codes *Codes, records Records, dlq DLQ, charts Charts) map[string]http.Handler {
	h := map[string]http.Handler{
		"GET /api/runs":       logPage(records, runlog.Runs),
		"GET /api/runs/{key}": runDetail(records),
		"GET /api/loads":      logPage(records, runlog.Loads),
		"GET /api/batches":    logPage(records, runlog.Batches),
		"GET /api/dlq":        dlqPage(dlq),
		"GET /api/dlq/entry":  dlqEntry(dlq),
		"GET /api/charts":     chartsHandler(charts),
	}
	for p, handler := range h {
		h[p] = authed(token, codes, handler)
	}
	return h
}

func pageLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return pageDefault, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > pageMax {
		return 0, fmt.Errorf("limit %q: want 1 to %d", s, pageMax)
	}
	return n, nil
}

// logPage serves a page of one kind of the run log. Each item is the stored JSON with its key
// spliced in front, so a page is never decoded and encoded again.
func logPage(records Records, kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, err := pageLimit(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		before, err := runlog.ParseKey(r.URL.Query().Get("before"))
		if err != nil {
			http.Error(w, "before: "+err.Error(), http.StatusBadRequest)
			return
		}
		page, err := records.Page(kind, before, limit+1) // one more: is there a next page?
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		more := len(page) > limit
		page = page[:min(limit, len(page))]
		out := make([]byte, 0, 64+len(page)*256)
		out = append(out, `{"items":[`...)
		for i, e := range page {
			if i > 0 {
				out = append(out, ',')
			}
			out = spliceKey(out, strconv.FormatUint(e.Key, 10), e.Value)
		}
		out = append(out, ']')
		if more {
			out = append(out, `,"next":"`+strconv.FormatUint(page[len(page)-1].Key, 10)+`"`...)
		}
		writeJSON(w, append(out, "}\n"...))
	}
}

// spliceKey appends value (a JSON object) with "id", its key in the run log, as its first
// member (a load's "key" is its object's).
func spliceKey(out []byte, key string, value []byte) []byte {
	out = append(out, `{"id":"`+key+`"`...)
	if len(value) > 2 { // more than {}
		out = append(out, ',')
		out = append(out, value[1:]...)
		return out
	}
	return append(out, '}')
}

// runDetail serves one run: its summary and, while the log keeps it, its detail.
func runDetail(records Records) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, err := runlog.ParseKey(r.PathValue("key"))
		if err != nil || key == 0 {
			http.Error(w, "run "+r.PathValue("key")+": want a run's key", http.StatusBadRequest)
			return
		}
		sum, err := records.Get(runlog.Runs, key)
		if errors.Is(err, runlog.ErrNotFound) {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		detail, err := records.Get(runlog.RunDetails, key)
		if errors.Is(err, runlog.ErrNotFound) {
			detail = []byte(`{"nodes":[],"log":"","expired":true}`)
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out := spliceKey(nil, strconv.FormatUint(key, 10), sum)
		out = append(out[:len(out)-1], `,"detail":`...)
		out = append(append(out, detail...), "}\n"...)
		writeJSON(w, out)
	}
}

func dlqPage(dlq DLQ) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, err := pageLimit(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		items, err := dlq.List(r.Context(), r.URL.Query().Get("after"), limit+1) // one more: is there a next page?
		if err != nil {
			http.Error(w, "dlq: "+err.Error(), http.StatusBadGateway)
			return
		}
		page := struct {
			Items []DLQItem `json:"items"`
			Next  string    `json:"next,omitempty"`
		}{Items: append([]DLQItem{}, items[:min(limit, len(items))]...)}
		if len(items) > limit {
			page.Next = page.Items[limit-1].Key
		}
		body, _ := json.Marshal(page)
		writeJSON(w, body)
	}
}

func dlqEntry(dlq DLQ) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("key")
		body, err := dlq.Read(r.Context(), key)
		if errors.Is(err, ErrNotDLQ) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, body)
	}
}

// ErrNotDLQ is a DLQ's error for a key outside dlq/.
var ErrNotDLQ = errors.New("not a dlq/ object key")

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}
