package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/runlog"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// freeTurn is a warehouse turn nobody else holds, taken after wait (a RAW snapshot's).
type freeTurn struct {
	held *bool
	wait time.Duration
}

func (f freeTurn) Acquire(context.Context) (func(), error) {
	time.Sleep(f.wait)
	*f.held = true
	return func() { *f.held = false }, nil
}

// runResults is a run_results.json as dbt writes it: one model with its rows affected, one test.
func runResults(invocation string, testStatus string) string {
	return fmt.Sprintf(`{"metadata": {"invocation_id": %q}, "results": [
	  {"unique_id": "model.fin.dim_accounts", "status": "success", "execution_time": 1.5, "message": "OK",
	   "timing": [{"name": "execute", "started_at": "2026-03-01T09:00:01Z", "completed_at": "2026-03-01T09:00:02.5Z"}],
	   "adapter_response": {"rows_affected": 5}},
	  {"unique_id": "test.fin.not_null_dim_accounts_id", "status": %q, "execution_time": 0.2, "failures": 2, "adapter_response": {}}]}`,
		invocation, testStatus)
}

// build runs one build through the capture as dbtrun.Run would: take the turn, print, write
// run_results.json, let go.
func build(t *testing.T, s *Stack, output, results string) {
	t.Helper()
	release, err := s.runs.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(s.runs, output)
	if err := os.WriteFile(filepath.Join(s.runs.target, "run_results.json"), []byte(results), 0o600); err != nil {
		t.Fatal(err)
	}
	release()
}

func summary(invocation string, passed, failed int, cut ...*dbtrun.Cut) []byte {
	sum := dbtrun.Summary{InvocationID: invocation, ModelsBuilt: 1, TestsPassed: passed, TestsFailed: failed, WallSeconds: 2}
	if len(cut) > 0 {
		sum.Cut = cut[0]
	}
	b, _ := json.Marshal(sum)
	return b
}

// TestDbtRunsKeptWithDetailAcrossRestart: two builds whose results come back in the other order
// are each kept with their own nodes, rows affected and part of the console log (not the lines
// printed between builds); after a restart the status shows them again, newest first.
func TestDbtRunsKeptWithDetailAcrossRestart(t *testing.T) {
	s := testStack(t, Config{})
	if err := s.openRunLog(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	go s.recorder.run(ctx)
	var file bytes.Buffer
	held := false
	newest := time.Now().Add(-3 * time.Second)
	loaded := int64(100)
	s.runs = &runCapture{out: &file, turn: freeTurn{held: &held, wait: 20 * time.Millisecond}, target: t.TempDir(), loaded: func() int64 { loaded += 10; return loaded },
		newest: func(context.Context) (time.Time, bool) { return newest, true }}

	build(t, s, "build one\n", runResults("inv-1", "fail"))
	fmt.Fprint(s.runs, "between builds\n")
	build(t, s, "build two\n", runResults("inv-2", "pass"))
	if held || !strings.Contains(file.String(), "between builds") {
		t.Fatalf("turn held after release: %v; the log file has %q", held, file.String())
	}
	committed, lag := time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC), 2.5
	cut := &dbtrun.Cut{LSN: 4242, CommitTime: &committed, BuiltAt: committed.Add(2500 * time.Millisecond), LagSeconds: &lag}
	s.recordDbtRun("loads")(summary("inv-2", 1, 0, cut), nil)
	s.recordDbtRun("schedule")(summary("inv-1", 0, 1), fmt.Errorf("%w: test.fin.not_null_dim_accounts_id", dbtrun.ErrFailed))
	stop()
	<-s.recorder.done
	if got := s.publishedRows.Load(); got != 120 {
		t.Errorf("rows published to gold = %d, want 120 (RAW's rows when the build that passed began)", got)
	}

	page, err := s.runLog.Page(runlog.Runs, 0, 10)
	if err != nil || len(page) != 2 {
		t.Fatalf("runs kept: %d, %v; want 2", len(page), err)
	}
	for i, want := range []struct {
		trigger, log string
		ok, goldLag  bool
		test         string
		cut          bool
	}{{"schedule", "build one\n", false, false, "fail", false}, {"loads", "build two\n", true, true, "pass", true}} {
		var r console.Run
		var d console.RunDetail
		json.Unmarshal(page[i].Value, &r)
		raw, err := s.runLog.Get(runlog.RunDetails, page[i].Key)
		if err != nil || json.Unmarshal(raw, &d) != nil {
			t.Fatalf("detail of run %d: %v", page[i].Key, err)
		}
		if r.Trigger != want.trigger || r.OK != want.ok || r.RowsAffected == nil || *r.RowsAffected != 5 || (r.GoldLagSeconds != nil) != want.goldLag ||
			want.goldLag && *r.GoldLagSeconds < 3 || d.Log != want.log || len(d.Nodes) != 2 || d.Nodes[1].Status != want.test ||
			*d.Nodes[0].RowsAffected != 5 || d.Nodes[0].Completed == nil || *d.Nodes[1].Failures != 2 {
			t.Errorf("run %d = %+v\ndetail %+v\nwant %+v", page[i].Key, r, d, want)
		}
		if r.TurnSeconds < 0.02 {
			t.Errorf("run %d: waited %.3f s for the turn, want at least the turn's 0.02 s", page[i].Key, r.TurnSeconds)
		}
		if gotCut := r.Cut != nil && r.Cut.LSN == 4242 && r.Cut.CommitTime.Equal(committed) && *r.Cut.LagSeconds == lag; gotCut != want.cut {
			t.Errorf("run %d: cut %+v, want the summary's (%v)", page[i].Key, r.Cut, want.cut)
		}
	}
	s.runLog.Close()

	again := testStack(t, Config{})
	again.cfg.StateDir = s.cfg.StateDir
	if err := again.openRunLog(); err != nil {
		t.Fatal(err)
	}
	defer again.runLog.Close()
	if len(again.dbtRuns) != 2 || again.dbtRuns[0].OK || !again.dbtRuns[1].OK || again.dbtRuns[0].TestsFailed != 1 ||
		again.dbtRuns[0].Cut != nil || again.dbtRuns[1].Cut == nil || again.dbtRuns[1].Cut.LSN != 4242 || again.dbtRuns[0].TurnSeconds < 0.02 {
		t.Fatalf("status runs after a restart: %+v", again.dbtRuns)
	}
}

func TestLogTailKeepsStartAndEnd(t *testing.T) {
	l := &logTail{max: 8}
	l.Write([]byte("ab"))
	if s, cut := l.String(); s != "ab" || cut {
		t.Fatalf("short log: %q %v", s, cut)
	}
	l.Write([]byte("cdefghij"))
	l.Write([]byte("KL"))
	s, cut := l.String()
	if !cut || !strings.HasPrefix(s, "abcd\n") || !strings.HasSuffix(s, "\nijKL") {
		t.Fatalf("long log: %q %v; want abcd … ijKL, cut", s, cut)
	}
}

type loadsOf struct{ dup bool }

func (loadsOf) Loaded(context.Context, string, string) (bool, error) { return false, nil }
func (w loadsOf) Load(_ context.Context, obj warehouse.Object) (warehouse.Result, error) {
	if obj.Table == "bad" {
		return warehouse.Result{}, errors.New("warehouse down")
	}
	return warehouse.Result{Rows: 3, Duplicate: w.dup}, nil
}

// TestLoadsAndBatchesRecorded: a load and a bronze object are recorded with their offsets; a
// duplicate load, a failed one and a dead letter are not loads or batches.
func TestLoadsAndBatchesRecorded(t *testing.T) {
	s := testStack(t, Config{})
	if err := s.openRunLog(); err != nil {
		t.Fatal(err)
	}
	defer s.runLog.Close()
	ctx, stop := context.WithCancel(t.Context())
	go s.recorder.run(ctx)
	key := "bronze/accounts/dt=2026-03-01/fin.public.accounts-0-10-19-0a1b2c3d.parquet"
	loadRecorder{loadsOf{}, s.recorder}.Load(ctx, warehouse.Object{Key: key, Table: "accounts"})
	loadRecorder{loadsOf{dup: true}, s.recorder}.Load(ctx, warehouse.Object{Key: key, Table: "accounts"})
	loadRecorder{loadsOf{}, s.recorder}.Load(ctx, warehouse.Object{Key: key, Table: "bad"})
	p := batchRecorder{&putter{}, s.recorder}
	for _, k := range []string{key, "dlq/fin.public.accounts/0a1b2c3d-0-12.json"} {
		if _, err := p.PutObject(ctx, "lake", k, strings.NewReader("PAR1"), 4, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	<-s.recorder.done
	loads, _ := s.runLog.Page(runlog.Loads, 0, 10)
	batches, _ := s.runLog.Page(runlog.Batches, 0, 10)
	var ld console.Load
	var b console.Batch
	if len(loads) != 1 || json.Unmarshal(loads[0].Value, &ld) != nil || ld.Rows != 3 || ld.First != 10 || ld.Last != 19 || ld.Topic != "fin.public.accounts" {
		t.Errorf("loads kept: %d, first %+v", len(loads), ld)
	}
	if len(batches) != 1 || json.Unmarshal(batches[0].Value, &b) != nil || b.Object != key || b.First != 10 || b.Last != 19 || b.Bytes != 4 {
		t.Errorf("batches kept: %d, first %+v", len(batches), b)
	}
}

// TestDLQPagesByKey: the DLQ view's reader lists the dead letters of the local S3 a page at a
// time after the last key seen, each with its reason and size, and reads one with its bytes; a
// key outside dlq/ is refused.
func TestDLQPagesByKey(t *testing.T) {
	s := testStack(t, Config{Bucket: "lake"})
	srv, creds := localS3(t, s)
	var err error
	if s.s3, err = objectstore.Open(objectstore.Config{Endpoint: srv.URL, AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e, _ := json.Marshal(landing.DLQEntry{Topic: "fin.public.accounts", Offset: int64(i), Reason: fmt.Sprintf("bad %d", i), ValueBase64: "bm90IGpzb24="})
		key := bronze.DLQKey("0a1b2c3d", "fin.public.accounts", 0, int64(i))
		if _, err := s.s3.PutObject(t.Context(), "lake", key, bytes.NewReader(e), int64(len(e)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s.s3.PutObject(t.Context(), "lake", "bronze/not-a-dead-letter.parquet", strings.NewReader("PAR1"), 4, minio.PutObjectOptions{})
	d := stackDLQ{s}
	first, err := d.List(t.Context(), "", 2)
	if err != nil || len(first) != 2 || first[0].Reason != "bad 0" || first[1].Offset != 1 || first[0].Bytes == 0 {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	rest, err := d.List(t.Context(), first[1].Key, 2)
	if err != nil || len(rest) != 1 || rest[0].Reason != "bad 2" {
		t.Fatalf("page after %s: %+v, %v", first[1].Key, rest, err)
	}
	body, err := d.Read(t.Context(), rest[0].Key)
	var e landing.DLQEntry
	if err != nil || json.Unmarshal(body, &e) != nil || e.ValueBase64 != "bm90IGpzb24=" || e.Offset != 2 {
		t.Fatalf("read %s: %s, %v", rest[0].Key, body, err)
	}
	for _, key := range []string{"bronze/not-a-dead-letter.parquet", "dlq/../bronze/x"} {
		if _, err := d.Read(t.Context(), key); !errors.Is(err, console.ErrNotDLQ) {
			t.Errorf("Read(%q) = %v, want ErrNotDLQ", key, err)
		}
	}
}

// TestBackfillLoadsFromTheLedger: at start, the loads the ledger holds and the run log lacks are
// recorded (a crash's lost records, or a run log newer than the warehouse), each once; the
// loads of this process (after until) are left to the loader's own records.
func TestBackfillLoadsFromTheLedger(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	load := func(name string, at time.Duration) console.Load {
		return console.Load{Key: fmt.Sprintf("bronze/accounts/dt=2026-03-01/fin.public.accounts-0-%d-%d-0a1b2c3d.parquet", at/time.Second, at/time.Second+9),
			Table: name, Rows: 1, LoadedAt: t0.Add(at)}
	}
	ledger := []console.Load{load("old", 0), load("e", time.Minute), load("b", 3*time.Minute), load("c", 4*time.Minute),
		load("lost", 4*time.Minute+30*time.Second), load("after-start", 10*time.Minute)}
	fake := func(_ context.Context, since, until time.Time, each func(console.Load)) error {
		for _, l := range ledger {
			if l.LoadedAt.After(since) && !l.LoadedAt.After(until) {
				each(l)
			}
		}
		return nil
	}
	for _, c := range []struct {
		name     string
		recorded []console.Load
		want     string
	}{
		{"after a crash", []console.Load{ledger[0], ledger[1], ledger[2], ledger[3]}, "old e b c lost"},
		{"a new run log", nil, "old e b c lost"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := testStack(t, Config{})
			if err := s.openRunLog(); err != nil {
				t.Fatal(err)
			}
			defer s.runLog.Close()
			for _, l := range c.recorded {
				b, _ := json.Marshal(l)
				s.runLog.Add(runlog.Loads, [][]byte{b}, nil)
			}
			ctx, stop := context.WithCancel(t.Context())
			go s.recorder.run(ctx)
			if err := s.backfillLoads(ctx, t0.Add(5*time.Minute), fake); err != nil {
				t.Fatal(err)
			}
			stop()
			<-s.recorder.done
			page, _ := s.runLog.Page(runlog.Loads, 0, 100)
			var got []string
			var last console.Load
			for i := len(page) - 1; i >= 0; i-- {
				json.Unmarshal(page[i].Value, &last)
				got = append(got, last.Table)
			}
			if strings.Join(got, " ") != c.want || last.First != 270 || last.Topic != "fin.public.accounts" {
				t.Fatalf("loads after the backfill: %v (last %+v), want %s", got, last, c.want)
			}
		})
	}
}
