package console

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandlerAuthAndStatus(t *testing.T) {
	st := Status{Time: time.Now(), Components: []Component{{Name: "capture", OK: true}}, DLQ: 2,
		Tables: []TableCount{{Table: "accounts", Postgres: 10, Warehouse: 9}}}
	codes := &Codes{}
	srv := httptest.NewServer(Handler("s3cret", codes, func(context.Context) Status { return st }, nil))
	defer srv.Close()

	get := func(c *http.Client, path, bearer string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	plain := http.DefaultClient
	if code, _ := get(plain, "/healthz", ""); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	for _, p := range []string{"/", "/api/status", "/?token=wrong"} {
		if code, _ := get(plain, p, ""); code != 401 {
			t.Errorf("%s without the token = %d, want 401", p, code)
		}
	}
	code, body := get(plain, "/api/status", "s3cret")
	var got Status
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil || got.DLQ != 2 || got.Tables[0].Warehouse != 9 {
		t.Fatalf("/api/status = %d %s", code, body)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if code, body := get(browser, "/?token=s3cret", ""); code != 200 || !strings.Contains(body, "<title>fin-orchestrator console") {
		t.Fatalf("page through the token link = %d", code)
	}
	if code, _ := get(browser, "/api/status", ""); code != 200 {
		t.Fatalf("the cookie set by the link did not authorise /api/status: %d", code)
	}
	// The link fin up prints carries a one-time code, not the token: it opens the page once.
	link := "/?code=" + codes.New()
	for i, want := range []int{200, 401} {
		jar, _ := cookiejar.New(nil)
		if code, _ := get(&http.Client{Jar: jar}, link, ""); code != want {
			t.Fatalf("one-time link, use %d: %d, want %d", i+1, code, want)
		}
	}
	if code, _ := get(plain, "/?code=made-up", ""); code != 401 {
		t.Fatalf("a made-up code: %d, want 401", code)
	}
}

func TestPrint(t *testing.T) {
	var b bytes.Buffer
	committed, lag := time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC), 2.5
	Print(&b, Status{Time: time.Now(), Components: []Component{{Name: "loader", OK: false, Detail: "warehouse locked"}},
		DbtRuns: []DbtRun{{OK: false, TestsFailed: 1, Failures: []string{"assert_transfers_net_zero"},
			Cut: &Cut{LSN: 4242, CommitTime: &committed, LagSeconds: &lag}}},
		Replication: &Replication{Slot: "fin_capture", Snapshotting: true},
		Reconcile:   &Reconcile{Verdict: "lost", Summary: "2 changes LOST; run `fin snapshot`", Lost: 2, Examples: []string{"customers c1: absent"}}})
	out := b.String()
	for _, want := range []string{"[DOWN] loader", "warehouse locked", "FAILED", "assert_transfers_net_zero", "lost: 2 changes LOST; run `fin snapshot`", "customers c1: absent", "slot fin_capture: 0 bytes, 0.0 s behind; a snapshot is running",
		"gold's cut: lsn 4242, committed " + committed.Local().Format(time.TimeOnly+".000") + ", 2.5 s before the build started"} {
		if !strings.Contains(out, want) {
			t.Errorf("fin status output lacks %q:\n%s", want, out)
		}
	}
}

func TestReconcileOK(t *testing.T) {
	for verdict, ok := range map[string]bool{"agree": true, "lag": true, "not compared": true, "lost": false, "differ": false} {
		if got := (Reconcile{Verdict: verdict}).OK(); got != ok {
			t.Errorf("verdict %s: OK() = %v, want %v", verdict, got, ok)
		}
	}
	if (Reconcile{Verdict: "agree", Error: "warehouse unreachable"}).OK() {
		t.Error("a failed comparison counts as OK")
	}
}
