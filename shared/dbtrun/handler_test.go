package dbtrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// fakeDBT is a dbt that records each command line in log and writes a run_results.json of one
// model, which fails from the run numbered FAKE_DBT_FAIL_RUN on (none when 0).
const fakeDBT = `#!/bin/sh
echo "$*" >> "$FAKE_DBT_LOG"
n=$(wc -l < "$FAKE_DBT_LOG" | tr -d ' ')
while [ $# -gt 0 ]; do [ "$1" = --target-path ] && target=$2; shift; done
status=success
[ "$FAKE_DBT_FAIL_RUN" -gt 0 ] && [ "$n" -ge "$FAKE_DBT_FAIL_RUN" ] && status=error
mkdir -p "$target"
printf '{"metadata":{"invocation_id":"inv-%s"},"elapsed_time":0.01,"results":[{"unique_id":"model.p.m","status":"%s","message":""}]}' "$n" "$status" > "$target/run_results.json"
`

// fakeRequests hands out one batch of waiting requests per read and records what was deleted.
type fakeRequests struct {
	batches [][]string // bodies
	reads   int
	deleted []string
}

func (f *fakeRequests) ReceiveWaiting(context.Context) ([]events.SQSMessage, error) {
	f.reads++
	if len(f.batches) == 0 {
		return nil, nil
	}
	var msgs []events.SQSMessage
	for _, body := range f.batches[0] {
		id := fmt.Sprintf("m%d", f.reads*10+len(msgs))
		msgs = append(msgs, events.SQSMessage{MessageId: id, ReceiptHandle: "r-" + id, Body: body})
	}
	f.batches = f.batches[1:]
	return msgs, nil
}

func (f *fakeRequests) DeleteMessages(_ context.Context, msgs []events.SQSMessage) error {
	for _, m := range msgs {
		f.deleted = append(f.deleted, m.ReceiptHandle)
	}
	return nil
}

// A build triggered by the queue takes in the requests waiting before it (its batch may be stale)
// and builds, once it ends, the requests that arrived meanwhile, in the same invocation, and
// deletes them once built: the next build does not wait for the mapping's throttled pollers and
// their batching window. A failed build keeps its requests; a deadline too close for another
// build leaves them to the pollers.
func TestBuildsWhatWaitedDuringTheBuild(t *testing.T) {
	for _, tc := range []struct {
		name        string
		waiting     [][]string
		failRun     int
		deadline    time.Duration // 0: none
		schedule    bool          // invoked by the schedule, not the queue
		wantSelects []string
		wantDeleted []string
		wantBuilt   int // summaries told to Config.Built
		wantErr     bool
	}{
		{name: "none waited", wantSelects: []string{"source:raw.transactions+"}},
		// The first read is before the first build (joinWaiting), the rest after each build.
		{name: "requests waited: built at once, then deleted",
			waiting:     [][]string{nil, {`{"tables":["accounts"]}`, `{"tables":["transactions"]}`}, {`{"tables":["customers"]}`}},
			wantSelects: []string{"source:raw.transactions+", "source:raw.accounts+ source:raw.transactions+", "source:raw.customers+"},
			wantDeleted: []string{"r-m20", "r-m21", "r-m30"}, wantBuilt: 2},
		{name: "requests waiting before the first build join the batch",
			waiting:     [][]string{{`{"tables":["accounts"]}`, `{"tables":["transaction_metadata"]}`}, {`{"tables":["customers"]}`}},
			wantSelects: []string{"source:raw.accounts+ source:raw.transaction_metadata+ source:raw.transactions+", "source:raw.customers+"},
			wantDeleted: []string{"r-m10", "r-m11", "r-m20"}, wantBuilt: 1},
		{name: "a waiting request for everything makes the first build everything",
			waiting:     [][]string{{`{"all":true}`}},
			wantSelects: []string{""}, wantDeleted: []string{"r-m10"}},
		{name: "the first build with joined requests fails: they are kept, the invocation fails",
			waiting: [][]string{{`{"tables":["accounts"]}`}}, failRun: 1,
			// the joined selection, then everything (handler's fallback), both failing
			wantSelects: []string{"source:raw.accounts+ source:raw.transactions+", ""}, wantErr: true},
		{name: "a build of waiting requests fails: they are kept, the invocation fails",
			waiting: [][]string{nil, {`{"tables":["accounts"]}`}}, failRun: 2,
			// the selected build, then everything (handler's fallback), both failing
			wantSelects: []string{"source:raw.transactions+", "source:raw.accounts+", ""}, wantBuilt: 1, wantErr: true},
		{name: "a scheduled build: left to the pollers", schedule: true,
			waiting:     [][]string{{`{"tables":["accounts"]}`}},
			wantSelects: []string{""}},
		{name: "no room before the deadline: left to the pollers",
			waiting: [][]string{nil, {`{"tables":["accounts"]}`}}, deadline: 20 * time.Second,
			wantSelects: []string{"source:raw.transactions+"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dbt := filepath.Join(dir, "dbt")
			if err := os.WriteFile(dbt, []byte(fakeDBT), 0o755); err != nil {
				t.Fatal(err)
			}
			log := filepath.Join(dir, "runs.log")
			q := &fakeRequests{batches: tc.waiting}
			built := 0
			cfg := Config{DBT: dbt, ProjectDir: dir, WorkDir: dir, ProcessPerRun: true, Requests: q,
				Env:   []string{"FAKE_DBT_LOG=" + log, fmt.Sprintf("FAKE_DBT_FAIL_RUN=%d", tc.failRun)},
				Built: func(Summary, error) { built++ }}
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			payload, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: "first", Body: `{"tables":["transactions"]}`}}})
			if tc.schedule {
				payload, _ = json.Marshal(events.EventBridgeEvent{ID: "schedule", DetailType: "Scheduled Event"})
			}
			_, err := Handler(cfg, slog.New(slog.DiscardHandler))(ctx, payload)
			if (err != nil) != tc.wantErr || err != nil && !errors.Is(err, ErrFailed) {
				t.Fatalf("invocation error %v, want error: %v", err, tc.wantErr)
			}
			data, _ := os.ReadFile(log)
			var selects []string
			for line := range strings.Lines(string(data)) {
				_, sel, _ := strings.Cut(strings.TrimSpace(line), "--select ")
				selects = append(selects, sel)
			}
			if !slices.Equal(selects, tc.wantSelects) {
				t.Errorf("builds selected %q, want %q", selects, tc.wantSelects)
			}
			if !slices.Equal(q.deleted, tc.wantDeleted) {
				t.Errorf("deleted %q, want %q", q.deleted, tc.wantDeleted)
			}
			if built != tc.wantBuilt {
				t.Errorf("Config.Built told of %d builds, want %d", built, tc.wantBuilt)
			}
		})
	}
}
