package dbtrun

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func TestArgs(t *testing.T) {
	cfg := Config{ProjectDir: "/p", WorkDir: "/w"}
	base := []string{"build", "--project-dir", "/p", "--profiles-dir", "/p", "--target-path", "/w/target", "--log-path", "/w/logs"}
	tests := []struct {
		name    string
		cfg     Config
		req     Request
		want    []string
		wantErr string
	}{
		{name: "everything", cfg: cfg, want: base},
		{name: "one selector", cfg: cfg, req: Request{Select: "marts"}, want: append(slices.Clone(base), "--select", "marts")},
		{name: "union of selectors", cfg: cfg, req: Request{Select: "stg_accounts+ tag:hourly  path:models/marts"},
			want: append(slices.Clone(base), "--select", "stg_accounts+", "tag:hourly", "path:models/marts")},
		{name: "full refresh and target", cfg: Config{ProjectDir: "/p", WorkDir: "/w", Target: "snowflake"}, req: Request{FullRefresh: true},
			want: append(slices.Clone(base), "--target", "snowflake", "--full-refresh")},
		{name: "tests all of whose models are selected", cfg: cfg, req: Request{Select: "source:raw.accounts+", IndirectSelection: "cautious"},
			want: append(slices.Clone(base), "--indirect-selection", "cautious", "--select", "source:raw.accounts+")},
		{name: "unknown indirect selection", cfg: cfg, req: Request{IndirectSelection: "lazy"}, wantErr: "want eager, cautious or buildable"},
		{name: "a flag smuggled in", cfg: cfg, req: Request{Select: "marts --vars x"}, wantErr: "looks like a flag"},
		{name: "shell characters", cfg: cfg, req: Request{Select: "marts;rm"}, wantErr: "only names"},
		{name: "no project", cfg: Config{}, wantErr: "project dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Args(tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Args(%+v) error = %v, want one containing %q", tt.req, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Args(%+v): %v", tt.req, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Args(%+v)\n got %q\nwant %q", tt.req, got, tt.want)
			}
		})
	}
}

// dbt's environment: no log file of its own and the caller's defaults unless the process
// environment says otherwise; Env over everything.
func TestEnviron(t *testing.T) {
	lookup := func(env []string, name string) string {
		v := ""
		for _, kv := range env { // a later entry wins, as for exec.Cmd and the worker
			if n, val, _ := strings.Cut(kv, "="); n == name {
				v = val
			}
		}
		return v
	}
	cfg := Config{EnvDefaults: []string{"DBT_THREADS=2"}, Env: []string{"WAREHOUSE_PATH=/w.duckdb"}}
	t.Setenv("DBT_LOG_LEVEL_FILE", "")
	os.Unsetenv("DBT_LOG_LEVEL_FILE")
	t.Setenv("DBT_THREADS", "")
	os.Unsetenv("DBT_THREADS")
	t.Setenv("WAREHOUSE_PATH", "/elsewhere.duckdb")
	env := cfg.environ()
	for name, want := range map[string]string{"DBT_LOG_LEVEL_FILE": "none", "DBT_THREADS": "2", "WAREHOUSE_PATH": "/w.duckdb"} {
		if got := lookup(env, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// The debug log file and another thread count, asked for in the environment.
	t.Setenv("DBT_LOG_LEVEL_FILE", "debug")
	t.Setenv("DBT_THREADS", "8")
	env = cfg.environ()
	for name, want := range map[string]string{"DBT_LOG_LEVEL_FILE": "debug", "DBT_THREADS": "8"} {
		if got := lookup(env, name); got != want {
			t.Errorf("with %s set in the environment, got %q, want %q", name, got, want)
		}
	}
}

// result is one entry of run_results.json as dbt writes it.
type result struct {
	UniqueID string `json:"unique_id"`
	Status   string `json:"status"`
	Message  string `json:"message"`
}

func runResultsJSON(t *testing.T, elapsed float64, rs ...result) []byte {
	t.Helper()
	data, err := json.Marshal(map[string]any{
		"metadata":     map[string]any{"invocation_id": "inv-1", "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
		"elapsed_time": elapsed,
		"results":      rs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseRunResults(t *testing.T) {
	tests := []struct {
		name    string
		results []result
		want    Summary
	}{
		{
			name: "all green",
			results: []result{
				{"model.p.stg_a", "success", "OK"}, {"model.p.dim_a", "success", "OK"},
				{"test.p.unique_a.1", "pass", ""}, {"test.p.nn_a.2", "warn", "Got 1 result"},
				{"unit_test.p.dim_a.t", "pass", ""},
			},
			want: Summary{ModelsBuilt: 2, TestsPassed: 2, TestsWarned: 1},
		},
		{
			name: "a failing test skips what follows",
			results: []result{
				{"model.p.stg_a", "success", "OK"}, {"test.p.nn_a.2", "fail", "Got 2 results, configured to fail if != 0"},
				{"model.p.dim_a", "skipped", ""}, {"test.p.unique_dim.3", "skipped", ""},
			},
			want: Summary{ModelsBuilt: 1, ModelsSkipped: 1, TestsFailed: 1, TestsSkipped: 1,
				Failures: []Failure{{"test.p.nn_a.2", "fail", "Got 2 results, configured to fail if != 0"}}},
		},
		{
			name: "a model and a seed error",
			results: []result{
				{"model.p.stg_a", "error", "Binder Error"}, {"seed.p.currencies", "error", "bad csv"},
				{"test.p.t.1", "error", "Database Error"},
			},
			want: Summary{ModelsFailed: 1, TestsFailed: 1, OtherFailed: 1, Failures: []Failure{
				{"model.p.stg_a", "error", "Binder Error"}, {"seed.p.currencies", "error", "bad csv"},
				{"test.p.t.1", "error", "Database Error"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRunResults(runResultsJSON(t, 1.5, tt.results...))
			if err != nil {
				t.Fatal(err)
			}
			tt.want.InvocationID, tt.want.Elapsed, tt.want.ElapsedSeconds = "inv-1", 1500*time.Millisecond, 1.5
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tt.want)
			if string(gj) != string(wj) {
				t.Errorf("summary\n got %s\nwant %s", gj, wj)
			}
		})
	}
	if _, err := parseRunResults([]byte("{not json")); err == nil {
		t.Error("parseRunResults accepted a broken file")
	}
}

func TestRequestFrom(t *testing.T) {
	tests := []struct {
		name    string
		detail  string
		want    Request
		wantErr bool
	}{
		{name: "scheduled event without detail", detail: ``},
		{name: "empty detail", detail: `{}`},
		{name: "selector", detail: `{"select":"marts"}`, want: Request{Select: "marts"}},
		{name: "full refresh", detail: `{"select":"fct_transactions","full_refresh":true}`, want: Request{Select: "fct_transactions", FullRefresh: true}},
		{name: "misspelt field", detail: `{"selct":"marts"}`, wantErr: true},
		{name: "not an object", detail: `"marts"`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := events.EventBridgeEvent{ID: "e1", DetailType: "Scheduled Event", Source: "aws.events", Detail: json.RawMessage(tt.detail)}
			got, err := RequestFrom(ev)
			if (err != nil) != tt.wantErr {
				t.Fatalf("RequestFrom(%s) error = %v, want error %v", tt.detail, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("RequestFrom(%s) = %+v, want %+v", tt.detail, got, tt.want)
			}
		})
	}
}

// A batch of build requests builds what is downstream of the tables they name, together; one
// request that cannot be read builds everything (and is named).
func TestRequestFromSQS(t *testing.T) {
	tests := []struct {
		name    string
		bodies  []string
		want    Request
		wantBad string
	}{
		{name: "one table", bodies: []string{`{"tables":["transactions"]}`}, want: Request{Select: "source:raw.transactions+"}},
		{name: "tables of a batch, once each, sorted", bodies: []string{`{"tables":["transactions","accounts"]}`, `{"tables":["accounts"]}`},
			want: Request{Select: "source:raw.accounts+ source:raw.transactions+"}},
		{name: "not JSON", bodies: []string{`{"tables":["accounts"]}`, `tables=accounts`}, wantBad: "m1"},
		{name: "no table", bodies: []string{`{"tables":[]}`}, wantBad: "names no table"},
		{name: "a model and its children", bodies: []string{`{"model":"fct_balances"}`}, want: Request{Select: "fct_balances+"}},
		{name: "a model beside a load", bodies: []string{`{"tables":["accounts"]}`, `{"model":"dim_accounts"}`},
			want: Request{Select: "dim_accounts+ source:raw.accounts+"}},
		{name: "all wins", bodies: []string{`{"tables":["accounts"]}`, `{"all":true}`}, want: Request{}},
		{name: "a model and tables in one", bodies: []string{`{"tables":["accounts"],"model":"x"}`}, wantBad: "more than one"},
		{name: "a selector as a model", bodies: []string{`{"model":"x+ --full-refresh"}`}, wantBad: "is not a model name"},
		{name: "a selector smuggled in", bodies: []string{`{"tables":["accounts+ --full-refresh"]}`}, wantBad: "is not a table name"},
		{name: "unknown field", bodies: []string{`{"tables":["accounts"],"select":"marts"}`}, wantBad: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev events.SQSEvent
			for i, b := range tt.bodies {
				ev.Records = append(ev.Records, events.SQSMessage{MessageId: "m" + strconv.Itoa(i), Body: b})
			}
			got, bad := RequestFromSQS(ev)
			if tt.wantBad != "" {
				if len(bad) != 1 || !strings.Contains(bad[0].Error(), tt.wantBad) || got != (Request{}) {
					t.Fatalf("RequestFromSQS = %+v, %v; want everything built and one error naming %q", got, bad, tt.wantBad)
				}
				return
			}
			if len(bad) > 0 || got != tt.want {
				t.Errorf("RequestFromSQS = %+v, %v; want %+v", got, bad, tt.want)
			}
		})
	}
}

func TestScheduledEventDecodes(t *testing.T) {
	// What EventBridge delivers for a schedule rule, and for a target whose Input is a detail.
	for _, payload := range []string{
		`{"version":"0","id":"53dc4d37","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2026-11-25T15:00:00Z","region":"eu-west-1","resources":["arn:aws:events:eu-west-1:123456789012:rule/dbt"],"detail":{}}`,
		`{"detail":{"select":"marts"}}`,
	} {
		var ev events.EventBridgeEvent
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			t.Fatalf("decode %s: %v", payload, err)
		}
		if _, err := RequestFrom(ev); err != nil {
			t.Errorf("RequestFrom(%s): %v", payload, err)
		}
	}
}

func TestFileLockTakesTurns(t *testing.T) {
	lock := FileLock{Path: t.TempDir() + "/warehouse.lock", Poll: 5 * time.Millisecond}
	release, err := lock.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := lock.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Acquire while held: err = %v, want a deadline error", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := lock.Acquire(context.Background())
		if err == nil {
			r()
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Acquire after release: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire did not get the lock within 5s of its release")
	}
}
