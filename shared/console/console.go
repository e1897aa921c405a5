// Package console serves the local stack's console page on 127.0.0.1:8080, in place of the
// original system's Airflow UI: pipeline health, replication lag, rows in Postgres beside the
// warehouse, recent loads and the DLQ, dbt runs with their tests, and a freshness chart. The same
// status is JSON at /api/status, which `fin status` prints.
package console

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bearer"
)

// Status is everything the console shows.
type Status struct {
	Time        time.Time        `json:"time"`
	Components  []Component      `json:"components"`
	Replication *Replication     `json:"replication,omitempty"`
	Tables      []TableCount     `json:"tables"`
	Loads       []Load           `json:"recent_loads"`
	DLQ         int64            `json:"dlq_objects"`
	DbtRuns     []DbtRun         `json:"dbt_runs"`
	Freshness   []FreshnessPoint `json:"freshness"`
	Reconcile   *Reconcile       `json:"reconcile,omitempty"`
}

// Reconcile is the last comparison of Postgres with the warehouse (what `fin reconcile` judges).
type Reconcile struct {
	At time.Time `json:"at"`
	// Verdict is "agree", "lag" (changes the slot still holds), "lost" (delivered by the capture,
	// absent from the warehouse), "differ" (other values at equal versions), "not compared"
	// (tables too large to compare in the stack) or "unknown" (the comparison failed).
	Verdict     string   `json:"verdict"`
	Summary     string   `json:"summary"`
	Lost        int      `json:"lost"`
	Lag         int      `json:"lag"`
	Differences int      `json:"differences"`
	Examples    []string `json:"examples,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// OK is false when changes are lost or differ; lag is the pipeline working.
func (r Reconcile) OK() bool {
	return r.Error == "" && (r.Verdict == "agree" || r.Verdict == "lag" || r.Verdict == "not compared")
}

// Component is one part of the pipeline and whether it is healthy.
type Component struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Replication is the capture's position behind Postgres.
type Replication struct {
	Slot       string  `json:"slot"`
	LagBytes   int64   `json:"lag_bytes"`
	LagSeconds float64 `json:"lag_seconds"`
	// Snapshotting: the capture is re-reading tables (an incremental snapshot runs).
	Snapshotting bool `json:"snapshotting"`
}

// TableCount is one table's rows in Postgres and current rows in the warehouse.
type TableCount struct {
	Table     string `json:"table"`
	Postgres  int64  `json:"postgres"`
	Warehouse int64  `json:"warehouse"`
}

// Load is one bronze object loaded into the warehouse: the landing's batch of one partition,
// offsets First to Last.
type Load struct {
	Key       string    `json:"key"`
	Table     string    `json:"table"`
	Rows      int64     `json:"rows"`
	LoadedAt  time.Time `json:"loaded_at"`
	Topic     string    `json:"topic,omitempty"`
	Partition int32     `json:"partition"`
	First     int64     `json:"first_offset"`
	Last      int64     `json:"last_offset"`
	// Replaced: the object was loaded before with another ETag, and its rows were replaced.
	Replaced bool `json:"replaced,omitempty"`
}

// DbtRun is the summary of one dbt build.
type DbtRun struct {
	At          time.Time `json:"at"`
	OK          bool      `json:"ok"`
	Models      int       `json:"models"`
	TestsPassed int       `json:"tests_passed"`
	TestsFailed int       `json:"tests_failed"`
	Seconds     float64   `json:"seconds"`
	TurnSeconds float64   `json:"turn_seconds,omitempty"` // the wait for the warehouse turn before it (Run's)
	Failures    []string  `json:"failures,omitempty"`
	// Select is the dbt selector the build ran: empty for everything, "source:raw.<t>+" for loads,
	// "<model>+" for an operator's build of a model.
	Select string `json:"select,omitempty"`
	// Cut is gold's consistent cut after the build, when it built gold.cut.
	Cut *Cut `json:"cut,omitempty"`
}

// FreshnessPoint is commit-to-warehouse latency over one minute.
type FreshnessPoint struct {
	Minute time.Time `json:"minute"`
	P50    float64   `json:"p50_seconds"`
	P95    float64   `json:"p95_seconds"`
	Rows   int64     `json:"rows"`
}

// Source gathers the status; the local runtime composes it from its parts.
type Source func(ctx context.Context) Status

//go:embed page.html
var page []byte

//go:embed runs.js
var runsJS []byte

// Codes are one-time codes for the console link. `fin up` prints a link with one rather than the
// long-lived token, which would stay in a terminal's scrollback and a browser's history.
type Codes struct {
	mu   sync.Mutex
	open map[string]bool
}

// New makes a code that opens the console once.
func (c *Codes) New() string {
	b := make([]byte, 16)
	rand.Read(b)
	code := hex.EncodeToString(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open = map[string]bool{}
	}
	c.open[code] = true
	return code
}

// take reports whether code is open, closing it.
func (c *Codes) take(code string) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ok := c.open[code]
	delete(c.open, code)
	return ok
}

// Handler serves the page and /api/status. Every path but /healthz needs the token: as a bearer
// header, or as ?token= or a one-time ?code= of codes (either sets an HttpOnly cookie, so the
// printed link opens the page).
func Handler(token string, codes *Codes, source Source, extra map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /api/status", authed(token, codes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(source(ctx))
	})))
	mux.Handle("GET /{$}", authed(token, codes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src 'self' data:")
		w.Write(page)
	})))
	mux.Handle("GET /runs.js", authed(token, codes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Write(runsJS)
	})))
	return mux
}

const cookieName = "fin_console"

func authed(token string, codes *Codes, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := bearer.Token(r)
		if c, err := r.Cookie(cookieName); err == nil && got == "" {
			got = c.Value
		}
		q := r.URL.Query()
		if t := q.Get("token"); t != "" && bearer.Equal(t, token) || q.Get("code") != "" && codes.take(q.Get("code")) {
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, r.URL.Path, http.StatusSeeOther)
			return
		}
		if !bearer.Equal(got, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fin console"`)
			http.Error(w, "open the console with the link `fin up` printed (it works once), or add ?token= with the token in .fin/sql.token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Print writes the status for a terminal (fin status).
func Print(w io.Writer, s Status) {
	fmt.Fprintf(w, "fin-orchestrator at %s\n\n", s.Time.Local().Format(time.DateTime))
	for _, c := range s.Components {
		mark := "ok  "
		if !c.OK {
			mark = "DOWN"
		}
		fmt.Fprintf(w, "  [%s] %-12s %s\n", mark, c.Name, c.Detail)
	}
	if r := s.Replication; r != nil {
		fmt.Fprintf(w, "\nreplication slot %s: %d bytes, %.1f s behind", r.Slot, r.LagBytes, r.LagSeconds)
		if r.Snapshotting {
			fmt.Fprint(w, "; a snapshot is running")
		}
		fmt.Fprintln(w)
	}
	if len(s.Tables) > 0 {
		fmt.Fprintf(w, "\n  %-14s %12s %12s\n", "table", "postgres", "warehouse")
		for _, t := range s.Tables {
			fmt.Fprintf(w, "  %-14s %12d %12d\n", t.Table, t.Postgres, t.Warehouse)
		}
	}
	if r := s.Reconcile; r != nil {
		fmt.Fprintf(w, "\nreconcile at %s: %s: %s\n", r.At.Local().Format(time.TimeOnly), r.Verdict, r.Summary)
		for _, e := range r.Examples {
			fmt.Fprintln(w, "  "+e)
		}
	}
	fmt.Fprintf(w, "\nDLQ objects: %d\n", s.DLQ)
	if len(s.Loads) > 0 {
		fmt.Fprintln(w, "\nrecent loads:")
		for _, l := range s.Loads[:min(5, len(s.Loads))] {
			fmt.Fprintf(w, "  %s  %-13s %6d rows  %s\n", l.LoadedAt.Local().Format(time.TimeOnly), l.Table, l.Rows, l.Key)
		}
	}
	if len(s.DbtRuns) > 0 {
		r := s.DbtRuns[0]
		state := "passed"
		if !r.OK {
			state = "FAILED"
		}
		fmt.Fprintf(w, "\nlast dbt build %s at %s: %d models, %d tests passed, %d failed, %.1f s\n",
			state, r.At.Local().Format(time.TimeOnly), r.Models, r.TestsPassed, r.TestsFailed, r.Seconds)
		if c := r.Cut; c != nil && c.CommitTime != nil && c.LagSeconds != nil {
			fmt.Fprintf(w, "  gold's cut: lsn %d, committed %s, %.1f s before the build started\n",
				c.LSN, c.CommitTime.Local().Format(time.TimeOnly+".000"), *c.LagSeconds)
		}
		for _, f := range r.Failures {
			fmt.Fprintln(w, "  "+f)
		}
	}
	if n := len(s.Freshness); n > 0 {
		p := s.Freshness[n-1]
		fmt.Fprintf(w, "\nfreshness (commit to warehouse), last minute: p50 %.1f s, p95 %.1f s over %d rows\n", p.P50, p.P95, p.Rows)
	}
}

// Healthy is true when every component is.
func (s Status) Healthy() bool {
	for _, c := range s.Components {
		if !c.OK {
			return false
		}
	}
	return true
}
