package lambdalocal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// runMapping runs an SQS mapping of handler on a queue with the given visibility timeout (s)
// and redrive to a dead-letter queue after maxReceive receives; it stops with the test.
func runMapping(t *testing.T, ev samtemplate.SQSEvent, visibility, maxReceive, reserved int, handler any) (q, dlq *Queue, fn *Function) {
	t.Helper()
	dlq = NewQueue(&samtemplate.Queue{Name: "dlq", VisibilityTimeout: 30, MessageRetentionPeriod: 3600}, nil, nil)
	q = NewQueue(&samtemplate.Queue{Name: "requests", VisibilityTimeout: visibility, MessageRetentionPeriod: 3600,
		MaxReceiveCount: maxReceive, DeadLetterQueue: "dlq"}, dlq, nil)
	fn = NewFunction("f", handler, 10*time.Second)
	fn.Reserved = reserved
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { RunSQS(ctx, SQSMapping{Event: ev, Queue: q, Function: fn}); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return q, dlq, fn
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A failed batch shows again after the visibility timeout, not before, with its receive count
// up; past maxReceiveCount it moves to the dead-letter queue.
func TestSQSFailedBatchShowsAgainAfterVisibilityTimeout(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	var counts []string
	q, dlq, _ := runMapping(t, samtemplate.SQSEvent{BatchSize: 10}, 1, 2, -1, func(ctx context.Context, ev events.SQSEvent) error {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		counts = append(counts, ev.Records[0].Attributes["ApproximateReceiveCount"])
		return errors.New("build failed")
	})
	q.SendMessage(context.Background(), `{"tables":["accounts"]}`)
	waitFor(t, "the dead-letter queue", func() bool { return dlq.Len() == 1 && q.Len() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(counts) != "[1 2]" {
		t.Fatalf("receive counts %v, want [1 2]", counts)
	}
	if gap := at[1].Sub(at[0]); gap < 900*time.Millisecond {
		t.Errorf("the failed batch came back after %v, before its 1 s visibility timeout", gap)
	}
}

// With ReportBatchItemFailures only the failed items come back; the rest are deleted.
func TestSQSBatchItemFailures(t *testing.T) {
	var mu sync.Mutex
	received := map[string]int{}
	q, _, _ := runMapping(t, samtemplate.SQSEvent{BatchSize: 10, MaxBatchingWindow: 1, ReportItemFailure: true}, 3, 0, -1,
		func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			var resp events.SQSEventResponse
			for _, r := range ev.Records {
				if received[r.Body]++; r.Body == "b" && received[r.Body] == 1 {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				}
			}
			return resp, nil
		})
	for _, b := range []string{"a", "b", "c"} {
		q.SendMessage(context.Background(), b)
	}
	waitFor(t, "every message deleted", func() bool { return q.Len() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if want := map[string]int{"a": 1, "b": 2, "c": 1}; fmt.Sprint(received) != fmt.Sprint(want) {
		t.Errorf("received %v, want %v (only the failed item again)", received, want)
	}
}

// With reserved concurrency 1 and two pollers a build never runs beside another: the second
// poller's batch is throttled and retried; messages sent during a build wait for the next one,
// batched, so a slow build leaves no queue of builds behind it.
func TestSQSReservedConcurrencyOneBuildAtATime(t *testing.T) {
	var running, most, calls, seen atomic.Int64
	q, _, _ := runMapping(t, samtemplate.SQSEvent{BatchSize: 10000, MaxBatchingWindow: 1, MaximumConcurrency: 2}, 30, 0, 1,
		func(ctx context.Context, ev events.SQSEvent) error {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			calls.Add(1)
			seen.Add(int64(len(ev.Records)))
			time.Sleep(300 * time.Millisecond) // a slow build
			return nil
		})
	const sent = 60
	for i := range sent {
		q.SendMessage(context.Background(), fmt.Sprint(i))
		time.Sleep(25 * time.Millisecond) // 1.5 s of loads
	}
	waitFor(t, "every message handled", func() bool { return q.Len() == 0 && seen.Load() >= sent })
	if most.Load() != 1 {
		t.Errorf("%d builds ran at once, want 1", most.Load())
	}
	if c := calls.Load(); c > 6 {
		t.Errorf("%d invocations for %d messages over 1.5 s with 0.3 s builds: requests were not batched", c, sent)
	}
}

// Throttled invocations of a function with reserved concurrency: Invoke refuses beyond it.
func TestInvokeBeyondReservedConcurrencyIsThrottled(t *testing.T) {
	release := make(chan struct{})
	fn := NewFunction("f", func(ctx context.Context) error { <-release; return nil }, time.Second)
	fn.Reserved = 1
	done := make(chan error)
	go func() { _, err := fn.Invoke(context.Background(), []byte("{}")); done <- err }()
	waitFor(t, "the first invocation", func() bool { return fn.running.Load() == 1 })
	if _, err := fn.Invoke(context.Background(), []byte("{}")); !errors.Is(err, ErrThrottled) {
		t.Fatalf("second invocation: %v, want ErrThrottled", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := InvokeAsync(context.Background(), fn, []byte("{}")); err != nil {
		t.Fatalf("after the first ended: %v", err)
	}
}

// A throttled asynchronous invocation is tried again no sooner than Lambda's queue would: 1 s
// after the first attempt, then 2 s after that (the SQS mapping's 100 ms doubling would have run
// it at 1.5 s, soon after the build holding the concurrency ended at 1.2 s).
func TestThrottledAsyncInvocationBacksOffAsLambda(t *testing.T) {
	release := make(chan struct{})
	fn := NewFunction("f", func(ctx context.Context) error { <-release; return nil }, 10*time.Second)
	fn.Reserved = 1
	go fn.Invoke(context.Background(), []byte("{}"))
	waitFor(t, "the first invocation", func() bool { return fn.running.Load() == 1 })
	start := time.Now()
	time.AfterFunc(1200*time.Millisecond, func() { close(release) })
	if _, err := InvokeAsync(context.Background(), fn, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("the throttled invocation ran %v after its first try, want its tries at 0, 1 and 3 s", took)
	}
}

// A message redriven to the dead-letter queue keeps its id and its first enqueue time, and expires
// there by that time (SQS standard queues), not by when it was moved.
func TestSQSDeadLetterKeepsIdAndEnqueueTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	dlq := NewQueue(&samtemplate.Queue{Name: "dlq", VisibilityTimeout: 30, MessageRetentionPeriod: 600}, nil, clock)
	q := NewQueue(&samtemplate.Queue{Name: "q", VisibilityTimeout: 60, MessageRetentionPeriod: 3600, MaxReceiveCount: 1}, dlq, clock)
	q.SendMessage(context.Background(), "b")
	first := q.Receive(context.Background(), 1, now)
	if len(first) != 1 {
		t.Fatalf("received %d messages, want 1", len(first))
	}
	now = now.Add(2 * time.Minute) // past the visibility timeout: the next receive redrives it
	if got := q.Receive(context.Background(), 1, now); len(got) != 0 || dlq.Len() != 1 {
		t.Fatalf("after its last allowed receive: received %d, dead letters %d; want 0 and 1", len(got), dlq.Len())
	}
	dead := dlq.Receive(context.Background(), 1, now)
	if len(dead) != 1 || dead[0].MessageId != first[0].MessageId || dead[0].Attributes["SentTimestamp"] != first[0].Attributes["SentTimestamp"] {
		t.Fatalf("dead letter %+v, want id %s and SentTimestamp %s", dead, first[0].MessageId, first[0].Attributes["SentTimestamp"])
	}
	now = now.Add(9 * time.Minute) // 11 minutes after it was first sent: past the DLQ's 10
	if got := dlq.Receive(context.Background(), 1, now); len(got) != 0 || dlq.Len() != 0 {
		t.Errorf("the dead letter outlived its retention counted from its first enqueue: received %d, held %d", len(got), dlq.Len())
	}
}
