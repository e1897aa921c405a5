package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/runlog"
)

// fakeDLQ holds dead letters in memory, listed in key order as S3 lists them.
type fakeDLQ map[string]DLQItem

func (f fakeDLQ) List(_ context.Context, after string, limit int) ([]DLQItem, error) {
	var keys []string
	for k := range f {
		if k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []DLQItem
	for _, k := range keys[:min(limit, len(keys))] {
		out = append(out, f[k])
	}
	return out, nil
}

func (f fakeDLQ) Read(_ context.Context, key string) (json.RawMessage, error) {
	if !strings.HasPrefix(key, "dlq/") {
		return nil, fmt.Errorf("%q: %w", key, ErrNotDLQ)
	}
	it, ok := f[key]
	if !ok {
		return nil, fmt.Errorf("%s: no such object", key)
	}
	return json.Marshal(map[string]any{"topic": it.Topic, "reason": it.Reason, "value_base64": "bm90IGpzb24="})
}

var fixture = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// runsServer serves the runs views on the run log at path, as the stack would after each start.
func runsServer(t *testing.T, path string, seed func(*runlog.Log)) (*httptest.Server, func()) {
	t.Helper()
	l, err := runlog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if seed != nil {
		seed(l)
	}
	dlq := fakeDLQ{}
	for i := range 3 {
		k := fmt.Sprintf("dlq/src/fin.public.accounts/0/%d.json", i)
		dlq[k] = DLQItem{Key: k, Topic: "fin.public.accounts", Offset: int64(i), Reason: "value is not JSON", Bytes: 8}
	}
	charts := func(context.Context) ChartData {
		return ChartData{Samples: []Sample{{At: fixture, LagBytes: 42, Captured: 7}}}
	}
	srv := httptest.NewServer(Handler("s3cret", &Codes{}, func(context.Context) Status { return Status{} },
		RunsHandlers("s3cret", &Codes{}, l, dlq, charts)))
	return srv, func() { srv.Close(); l.Close() }
}

func seedRuns(n int) func(*runlog.Log) {
	return func(l *runlog.Log) {
		var sums, details [][]byte
		for i := range n {
			r := Run{Started: fixture.Add(time.Duration(i) * time.Minute), Trigger: "schedule", OK: i%2 == 0, Models: 12}
			rows := int64(i)
			d := RunDetail{Nodes: []RunNode{{ID: "model.fin.dim_accounts", Kind: "model", Status: "success", RowsAffected: &rows}}, Log: fmt.Sprintf("run %d log", i)}
			s, _ := json.Marshal(r)
			b, _ := json.Marshal(d)
			sums, details = append(sums, s), append(details, b)
		}
		if _, err := l.Add(runlog.Runs, sums, details); err != nil {
			panic(err)
		}
		b, _ := json.Marshal(Load{Key: "bronze/accounts/dt=2026-03-01/fin.public.accounts-0-0-9-0a1b2c3d.parquet", Table: "accounts", Rows: 10, LoadedAt: fixture})
		l.Add(runlog.Loads, [][]byte{b}, nil)
		b, _ = json.Marshal(Batch{At: fixture, Object: "bronze/x.parquet", Kind: "bronze", Topic: "fin.public.accounts", First: 0, Last: 9})
		l.Add(runlog.Batches, [][]byte{b}, nil)
	}
}

// get requests url with token as a bearer (none when empty).
func get(t *testing.T, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func getJSON(t *testing.T, url, token string, into any) int {
	t.Helper()
	resp, body := get(t, url, token)
	if resp.StatusCode == 200 && into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("%s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode
}

type runsPage struct {
	Items []struct {
		ID string `json:"id"`
		Run
	} `json:"items"`
	Next string `json:"next"`
}

func TestRunsEndpointsNeedTheToken(t *testing.T) {
	srv, done := runsServer(t, filepath.Join(t.TempDir(), "runs.db"), seedRuns(3))
	defer done()
	for _, p := range []string{"/api/runs", "/api/runs/1", "/api/loads", "/api/batches", "/api/dlq", "/api/dlq/entry?key=dlq/a", "/api/charts"} {
		if code := getJSON(t, srv.URL+p, "", nil); code != 401 {
			t.Errorf("%s without the token: %d, want 401", p, code)
		}
		if code := getJSON(t, srv.URL+p, "wrong", nil); code != 401 {
			t.Errorf("%s with a wrong token: %d, want 401", p, code)
		}
	}
}

// TestRunsPagedByKeyAcrossRestart walks every run page by page (cursor = the last key seen),
// restarts the server on the same file, and finds the same runs and the new one.
func TestRunsPagedByKeyAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	srv, done := runsServer(t, path, seedRuns(7))
	walk := func(url string) []string {
		var keys []string
		for cursor, pages := "", 0; ; pages++ {
			var p runsPage
			if code := getJSON(t, url+"/api/runs?limit=3&before="+cursor, "s3cret", &p); code != 200 {
				t.Fatalf("page %d: %d", pages, code)
			}
			for _, it := range p.Items {
				keys = append(keys, it.ID)
			}
			if p.Next == "" {
				return keys
			}
			if pages > 10 {
				t.Fatal("pages never end")
			}
			cursor = p.Next
		}
	}
	if got := strings.Join(walk(srv.URL), " "); got != "7 6 5 4 3 2 1" {
		t.Fatalf("runs walked by key: %s, want 7 6 5 4 3 2 1", got)
	}
	// A last page that is full says so: no "next" that leads to an empty page.
	var last runsPage
	if getJSON(t, srv.URL+"/api/runs?limit=3&before=4", "s3cret", &last); len(last.Items) != 3 || last.Next != "" {
		t.Fatalf("the last, full page: %+v, want 3 runs and no next", last)
	}
	done()
	srv, done = runsServer(t, path, func(l *runlog.Log) {
		b, _ := json.Marshal(Run{Started: fixture.Add(time.Hour), Trigger: "loads", OK: true})
		l.Add(runlog.Runs, [][]byte{b}, [][]byte{[]byte(`{"nodes":[],"log":"after restart"}`)})
	})
	defer done()
	if got := strings.Join(walk(srv.URL), " "); got != "8 7 6 5 4 3 2 1" {
		t.Fatalf("runs after a restart: %s, want 8 7 6 5 4 3 2 1", got)
	}
	var d struct {
		ID string `json:"id"`
		Run
		Detail RunDetail `json:"detail"`
	}
	if code := getJSON(t, srv.URL+"/api/runs/3", "s3cret", &d); code != 200 || d.ID != "3" || d.Detail.Log != "run 2 log" ||
		len(d.Detail.Nodes) != 1 || *d.Detail.Nodes[0].RowsAffected != 2 || !d.Started.Equal(fixture.Add(2*time.Minute)) {
		t.Fatalf("run 3 = %d %+v", code, d)
	}
	for path, want := range map[string]int{"/api/runs/99": 404, "/api/runs/x": 400, "/api/runs?before=-1": 400, "/api/runs?limit=0": 400, "/api/runs?limit=501": 400} {
		if code := getJSON(t, srv.URL+path, "s3cret", nil); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
}

func TestLoadsBatchesDLQAndCharts(t *testing.T) {
	srv, done := runsServer(t, filepath.Join(t.TempDir(), "runs.db"), seedRuns(1))
	defer done()
	var loads struct {
		Items []struct {
			ID string `json:"id"`
			Load
		} `json:"items"`
		Next string `json:"next"`
	}
	if code := getJSON(t, srv.URL+"/api/loads", "s3cret", &loads); code != 200 || len(loads.Items) != 1 || loads.Items[0].Rows != 10 ||
		loads.Items[0].ID != "1" || !strings.HasPrefix(loads.Items[0].Key, "bronze/accounts/") || loads.Next != "" {
		t.Fatalf("loads: %d %+v", code, loads)
	}
	var batches struct {
		Items []Batch `json:"items"`
	}
	if code := getJSON(t, srv.URL+"/api/batches", "s3cret", &batches); code != 200 || len(batches.Items) != 1 || batches.Items[0].Last != 9 {
		t.Fatalf("batches: %d %+v", code, batches)
	}
	var dlq struct {
		Items []DLQItem `json:"items"`
		Next  string    `json:"next"`
	}
	if code := getJSON(t, srv.URL+"/api/dlq?limit=2", "s3cret", &dlq); code != 200 || len(dlq.Items) != 2 || dlq.Next != dlq.Items[1].Key {
		t.Fatalf("dlq page 1: %d %+v", code, dlq)
	}
	after := dlq.Next
	dlq.Next = ""
	if code := getJSON(t, srv.URL+"/api/dlq?limit=2&after="+after, "s3cret", &dlq); code != 200 || len(dlq.Items) != 1 || dlq.Items[0].Offset != 2 || dlq.Next != "" {
		t.Fatalf("dlq page 2 after %s: %d %+v", after, code, dlq)
	}
	dlq.Next = ""
	if code := getJSON(t, srv.URL+"/api/dlq?limit=3", "s3cret", &dlq); code != 200 || len(dlq.Items) != 3 || dlq.Next != "" {
		t.Fatalf("3 dead letters on a page of 3: %d %+v, want them all and no next", code, dlq)
	}
	var entry map[string]any
	if code := getJSON(t, srv.URL+"/api/dlq/entry?key="+dlq.Items[0].Key, "s3cret", &entry); code != 200 || entry["reason"] != "value is not JSON" || entry["value_base64"] == nil {
		t.Fatalf("dlq entry: %d %v", code, entry)
	}
	if code := getJSON(t, srv.URL+"/api/dlq/entry?key=bronze/x", "s3cret", nil); code != 400 {
		t.Errorf("a key outside dlq/: %d, want 400", code)
	}
	var c ChartData
	if code := getJSON(t, srv.URL+"/api/charts", "s3cret", &c); code != 200 || len(c.Samples) != 1 || c.Samples[0].LagBytes != 42 || c.Gold == nil {
		t.Fatalf("charts: %d %+v", code, c)
	}
}

func TestSamplesKeepTheWindow(t *testing.T) {
	r := Samples{Window: 10 * time.Minute}
	for i := range 30 {
		r.Add(Sample{At: fixture.Add(time.Duration(i) * time.Minute), Captured: int64(i)})
	}
	got := r.All()
	if len(got) != 11 || got[0].Captured != 19 || got[10].Captured != 29 {
		t.Fatalf("kept %d samples from %d to %d, want 11 from 19 to 29", len(got), got[0].Captured, got[len(got)-1].Captured)
	}
}

// TestPageHasTheViews: the page carries each view the browser test looks for, and its script
// comes from the console itself (CSP script-src 'self'), behind the token.
func TestPageHasTheViews(t *testing.T) {
	srv, done := runsServer(t, filepath.Join(t.TempDir(), "runs.db"), nil)
	defer done()
	resp, page := get(t, srv.URL+"/", "s3cret")
	for _, want := range []string{`id="view-runs"`, `id="view-loads"`, `id="view-batches"`, `id="view-dlq"`, `id="view-charts"`,
		`id="run-detail"`, `id="dlq-detail"`, `<script src="/runs.js">`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if resp, js := get(t, srv.URL+"/runs.js", "s3cret"); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") ||
		!bytes.Contains(js, []byte(`pager("runs", "/api/runs", "before"`)) || bytes.Contains(js, []byte("http://")) || bytes.Contains(js, []byte("https://")) {
		t.Errorf("/runs.js: %d %s (it must load nothing from elsewhere)", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(t, srv.URL+"/runs.js", ""); resp.StatusCode != 401 {
		t.Errorf("/runs.js without the token: %d", resp.StatusCode)
	}
}
