package eventsource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/eventsource"
	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

const topic = "fin.public.accounts"

// broker is an in-process Kafka cluster on an ephemeral port with the topic in two partitions.
func broker(t *testing.T) (addr string, produce func(partition int32, key, value []byte, headers ...kgo.RecordHeader)) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	addr = c.ListenAddrs()[0]
	p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return addr, func(partition int32, key, value []byte, headers ...kgo.RecordHeader) {
		t.Helper()
		r := &kgo.Record{Topic: topic, Partition: partition, Key: key, Value: value, Headers: headers}
		if err := p.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// invocations records each invocation's event and answers with the next scripted response.
type invocations struct {
	mu      sync.Mutex
	events  []events.KafkaEvent
	raw     [][]byte
	answer  func(n int, ev events.KafkaEvent) ([]byte, error)
	calledC chan struct{}
}

func newInvocations(answer func(n int, ev events.KafkaEvent) ([]byte, error)) *invocations {
	return &invocations{answer: answer, calledC: make(chan struct{}, 100)}
}

func (iv *invocations) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	var ev events.KafkaEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("payload is not a KafkaEvent: %w", err)
	}
	iv.mu.Lock()
	n := len(iv.events)
	iv.events = append(iv.events, ev)
	iv.raw = append(iv.raw, payload)
	iv.mu.Unlock()
	defer func() { iv.calledC <- struct{}{} }()
	if iv.answer == nil {
		return []byte(`{"batchItemFailures":[]}`), nil
	}
	return iv.answer(n, ev)
}

// wait waits for n invocations in all.
func (iv *invocations) wait(t *testing.T, n int) {
	t.Helper()
	for {
		iv.mu.Lock()
		got := len(iv.events)
		iv.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-iv.calledC:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d invocations after 10s, want %d", got, n)
		}
	}
}

// run starts the mapping and stops it at the end of the test (or when stop is called).
func run(t *testing.T, cfg eventsource.Config, fn eventsource.Invoker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- eventsource.Run(ctx, cfg, fn) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancel")
		}
	})
	t.Cleanup(stop)
	return stop
}

func TestEventIsBuiltAsAWSBuildsIt(t *testing.T) {
	for _, tc := range []struct {
		source, arn string
	}{
		{eventsource.SourceSelfManaged, ""},
		{eventsource.SourceMSK, "arn:aws:kafka:eu-west-1:123456789012:cluster/fin/abc"},
	} {
		t.Run(tc.source, func(t *testing.T) {
			addr, produce := broker(t)
			produce(0, []byte(`{"id":"a1"}`), []byte(`{"op":"c"}`), kgo.RecordHeader{Key: "h", Value: []byte{0xff, 0x00, 'A'}})
			produce(0, []byte(`{"id":"a1"}`), nil) // tombstone
			produce(1, []byte(`{"id":"a2"}`), []byte(`{"op":"r"}`))
			iv := newInvocations(nil)
			run(t, eventsource.Config{Brokers: []string{addr}, Topic: topic, GroupID: "g",
				BatchSize: 3, BatchingWindow: 2 * time.Second, EventSource: tc.source, EventSourceARN: tc.arn}, iv)
			iv.wait(t, 1)

			var got struct {
				EventSource      string                      `json:"eventSource"`
				EventSourceArn   *string                     `json:"eventSourceArn"`
				BootstrapServers string                      `json:"bootstrapServers"`
				Records          map[string][]map[string]any `json:"records"`
			}
			if err := json.Unmarshal(iv.raw[0], &got); err != nil {
				t.Fatal(err)
			}
			if got.EventSource != tc.source || got.BootstrapServers != addr || got.EventSourceArn == nil || *got.EventSourceArn != tc.arn {
				t.Errorf("eventSource %q arn %v bootstrapServers %q; want %q %q %q", got.EventSource,
					got.EventSourceArn, got.BootstrapServers, tc.source, tc.arn, addr)
			}
			p0, p1 := got.Records[topic+"-0"], got.Records[topic+"-1"]
			if len(got.Records) != 2 || len(p0) != 2 || len(p1) != 1 {
				t.Fatalf("records = %s; want keys %s-0 (2 records) and %s-1 (1)", iv.raw[0], topic, topic)
			}
			first, _ := json.Marshal(p0[0])
			want := fmt.Sprintf(`{"headers":[{"h":[-1,0,65]}],"key":"eyJpZCI6ImExIn0=","offset":0,"partition":0,`+
				`"timestamp":%.0f,"timestampType":"CREATE_TIME","topic":"%s","value":"eyJvcCI6ImMifQ=="}`, p0[0]["timestamp"], topic)
			if string(first) != want {
				t.Errorf("record = %s\nwant     %s", first, want)
			}
			if v, ok := p0[1]["value"]; ok && v != "" {
				t.Errorf("tombstone value = %v, want absent or empty", v)
			}
			if ts, ok := p0[0]["timestamp"].(float64); !ok || time.Since(time.UnixMilli(int64(ts))) > time.Minute {
				t.Errorf("timestamp = %v, want the record's time in epoch milliseconds", p0[0]["timestamp"])
			}
		})
	}
}

func TestBatchesBySizeAndWindow(t *testing.T) {
	for _, tc := range []struct {
		name      string
		batchSize int
		window    time.Duration
		records   int
		want      []int
	}{
		{"size cuts batches", 3, 300 * time.Millisecond, 7, []int{3, 3, 1}},
		{"window closes a short batch", 100, 300 * time.Millisecond, 7, []int{7}},
		{"batch of one", 1, time.Second, 3, []int{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, produce := broker(t)
			for i := range tc.records {
				produce(0, []byte(fmt.Sprint(i)), []byte("v"))
			}
			iv := newInvocations(nil)
			start := time.Now()
			run(t, eventsource.Config{Brokers: []string{addr}, Topic: topic, GroupID: "g",
				BatchSize: tc.batchSize, BatchingWindow: tc.window}, iv)
			iv.wait(t, len(tc.want))
			elapsed := time.Since(start)
			time.Sleep(tc.window + 200*time.Millisecond) // nothing more may come
			var sizes []int
			var offsets []int64
			for _, ev := range iv.events {
				sizes = append(sizes, len(ev.Records[topic+"-0"]))
				for _, r := range ev.Records[topic+"-0"] {
					offsets = append(offsets, r.Offset)
				}
			}
			if !slices.Equal(sizes, tc.want) {
				t.Errorf("batch sizes %v, want %v", sizes, tc.want)
			}
			if len(offsets) != tc.records || !slices.IsSorted(offsets) || offsets[0] != 0 {
				t.Errorf("offsets delivered %v, want 0..%d once each in order", offsets, tc.records-1)
			}
			if tc.want[len(tc.want)-1] < tc.batchSize && elapsed < tc.window {
				t.Errorf("short batch invoked after %s, before the %s window closed", elapsed, tc.window)
			}
		})
	}
}

// TestWindowRunsWhileTheFunctionDoes: a record that arrives while the previous batch's
// invocation runs has been gathering since it arrived, as with AWS's pollers, which go on
// reading while a batch runs. Its window (1 s) is over by the time a 1.5 s invocation returns,
// so the next batch goes at once; a window started only when the invocation returns would
// stretch every batch by the landing's duration.
func TestWindowRunsWhileTheFunctionDoes(t *testing.T) {
	const window, slow = time.Second, 1500 * time.Millisecond
	addr, produce := broker(t)
	var returned time.Time
	started := make(chan struct{})
	iv := newInvocations(func(n int, _ events.KafkaEvent) ([]byte, error) {
		if n == 0 {
			close(started)
			time.Sleep(slow)
			returned = time.Now()
		}
		return []byte(`{"batchItemFailures":[]}`), nil
	})
	var invoked []time.Time
	timed := invokerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		invoked = append(invoked, time.Now())
		return iv.Invoke(ctx, payload)
	})
	produce(0, []byte("a"), []byte("v"))
	run(t, eventsource.Config{Brokers: []string{addr}, Topic: topic, GroupID: "g", BatchSize: 100, BatchingWindow: window}, timed)
	<-started
	time.Sleep(100 * time.Millisecond) // well inside the first invocation
	produce(0, []byte("b"), []byte("v"))
	iv.wait(t, 2)
	if got := len(iv.events[1].Records[topic+"-0"]); got != 1 {
		t.Fatalf("second batch holds %d records, want the one produced during the first", got)
	}
	if gap := invoked[1].Sub(returned); gap > window/2 {
		t.Errorf("second batch invoked %s after the first returned, want at once: its record had waited a whole window while the first ran", gap)
	}
}

// TestCommitsOnlyWhatWasAcknowledged scripts the function's answers: an error, a response
// naming a record that is not in the batch, an unreadable identifier, a truncated response,
// partial failures (object and flat identifiers), then success. While each
// invocation runs, the group's committed offsets must not cover the batch; afterwards exactly
// the acknowledged records are committed, and a restarted mapping resumes after them.
func TestCommitsOnlyWhatWasAcknowledged(t *testing.T) {
	addr, produce := broker(t)
	for i := range 4 {
		produce(0, []byte(fmt.Sprint("k", i)), []byte("v"))
	}
	for i := range 2 {
		produce(1, []byte(fmt.Sprint("k", i)), []byte("v"))
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	committed := func() [2]int64 {
		t.Helper()
		offs, err := kadm.NewClient(admin).FetchOffsets(context.Background(), "g")
		if err != nil {
			t.Errorf("fetch committed offsets: %v", err)
		}
		var c [2]int64
		for p := range int32(2) {
			c[p] = -1
			if o, ok := offs.Lookup(topic, p); ok && o.Err == nil {
				c[p] = o.At
			}
		}
		return c
	}
	failure := func(p int, off int64) []byte {
		return fmt.Appendf(nil, `{"batchItemFailures":[{"itemIdentifier":{"partition":"%s-%d","offset":%d}}]}`, topic, p, off)
	}

	type step struct {
		delivered     map[int][]int64 // partition -> offsets in the invocation
		committedWhen [2]int64        // committed offsets while it runs (-1: none)
		answer        func() ([]byte, error)
	}
	all := map[int][]int64{0: {0, 1, 2, 3}, 1: {0, 1}}
	steps := []step{
		{all, [2]int64{-1, -1}, func() ([]byte, error) { return nil, errors.New("function crashed") }},
		{all, [2]int64{-1, -1}, func() ([]byte, error) { return failure(0, 99), nil }},
		{all, [2]int64{-1, -1}, func() ([]byte, error) { return []byte(`{"batchItemFailures":[{"itemIdentifier":7}]}`), nil }},
		{all, [2]int64{-1, -1}, func() ([]byte, error) { return []byte(`{"batchItemFailures":`), nil }},
		{all, [2]int64{-1, -1}, func() ([]byte, error) { return failure(0, 2), nil }},
		{map[int][]int64{0: {2, 3}}, [2]int64{2, 2}, func() ([]byte, error) {
			return fmt.Appendf(nil, `{"batchItemFailures":[{"itemIdentifier":"%s-0-3"}]}`, topic), nil // the flat form
		}},
		{map[int][]int64{0: {3}}, [2]int64{3, 2}, func() ([]byte, error) { return []byte(`{"batchItemFailures":[]}`), nil }},
	}
	iv := newInvocations(func(n int, ev events.KafkaEvent) ([]byte, error) {
		if n >= len(steps) {
			t.Errorf("invocation %d: unexpected redelivery %+v", n, ev.Records)
			return nil, nil
		}
		s := steps[n]
		got := map[int][]int64{}
		for _, recs := range ev.Records {
			for _, r := range recs {
				got[int(r.Partition)] = append(got[int(r.Partition)], r.Offset)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(s.delivered) {
			t.Errorf("invocation %d delivered %v, want %v", n, got, s.delivered)
		}
		if c := committed(); c != s.committedWhen {
			t.Errorf("invocation %d: committed offsets %v while the function runs, want %v", n, c, s.committedWhen)
		}
		return s.answer()
	})
	cfg := eventsource.Config{Brokers: []string{addr}, Topic: topic, GroupID: "g",
		BatchSize: 10, BatchingWindow: 300 * time.Millisecond, RetryBackoff: 20 * time.Millisecond}
	stop := run(t, cfg, iv)
	iv.wait(t, len(steps))
	waitCommitted(t, committed, [2]int64{4, 2})
	stop()

	// A new mapping in the same group starts after what was committed.
	produce(0, []byte("k4"), []byte("v"))
	again := newInvocations(nil)
	run(t, cfg, again)
	again.wait(t, 1)
	if recs := again.events[0].Records; len(recs) != 1 || len(recs[topic+"-0"]) != 1 || recs[topic+"-0"][0].Offset != 4 {
		t.Errorf("after restart delivered %+v; want only %s-0@4", recs, topic)
	}
}

func waitCommitted(t *testing.T, committed func() [2]int64, want [2]int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c := committed(); c != want; c = committed() {
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets %v, want %v once the batch is acknowledged", c, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTimedOutInvocationIsRetried(t *testing.T) {
	addr, produce := broker(t)
	produce(0, []byte("k"), []byte("v"))
	iv := newInvocations(func(n int, _ events.KafkaEvent) ([]byte, error) {
		if n == 0 {
			time.Sleep(300 * time.Millisecond) // longer than the timeout
		}
		return nil, nil
	})
	var slow eventsource.Invoker = invokerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		out, err := iv.Invoke(ctx, payload)
		if ctx.Err() != nil {
			return nil, ctx.Err() // as Lambda reports a timed-out invocation
		}
		return out, err
	})
	run(t, eventsource.Config{Brokers: []string{addr}, Topic: topic, GroupID: "g",
		BatchingWindow: 50 * time.Millisecond, Timeout: 100 * time.Millisecond, RetryBackoff: 10 * time.Millisecond}, slow)
	iv.wait(t, 2)
	if got := iv.events[1].Records[topic+"-0"]; len(got) != 1 || got[0].Offset != 0 {
		t.Errorf("after a timeout, invocation 2 got %+v; want offset 0 again", got)
	}
}

func TestConfigIsChecked(t *testing.T) {
	for _, cfg := range []eventsource.Config{
		{Topic: topic, GroupID: "g"},
		{Brokers: []string{"127.0.0.1:1"}, GroupID: "g"},
		{Brokers: []string{"127.0.0.1:1"}, Topic: topic, GroupID: "g", BatchSize: 10_001},
		{Brokers: []string{"127.0.0.1:1"}, Topic: topic, GroupID: "g", BatchingWindow: 300*time.Second + time.Millisecond},
		{Brokers: []string{"127.0.0.1:1"}, Topic: topic, GroupID: "g", BatchingWindow: -time.Second},
		{Brokers: []string{"127.0.0.1:1"}, Topic: topic, GroupID: "g", EventSource: "kinesis"},
	} {
		if err := eventsource.Run(t.Context(), cfg, newInvocations(nil)); err == nil {
			t.Errorf("Run(%+v) accepted a bad configuration", cfg)
		}
	}
}

// Every failure is redelivered, a permanent one too (AWS retries a Kafka batch until it is
// acknowledged; dropping it would lose a change), and the log says which will not pass alone.
func TestFailedBatchIsRedeliveredWhateverItsClass(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answer    func() ([]byte, error)
		permanent string
	}{
		{"function error", func() ([]byte, error) { return nil, errors.New("503 from S3") }, "permanent=false"},
		{"function error marked permanent", func() ([]byte, error) { return nil, retry.Permanent(errors.New("bad config")) }, "permanent=true"},
		{"answer names no record of the batch", func() ([]byte, error) {
			return []byte(`{"batchItemFailures":[{"itemIdentifier":"other-0-99"}]}`), nil
		}, "permanent=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, produce := broker(t)
			produce(0, []byte("k"), []byte("v"))
			iv := newInvocations(func(n int, _ events.KafkaEvent) ([]byte, error) {
				if n < 2 {
					return tc.answer()
				}
				return nil, nil
			})
			var logs syncBuffer
			run(t, eventsource.Config{Brokers: []string{addr}, Topic: topic, GroupID: "g",
				BatchingWindow: 20 * time.Millisecond, RetryBackoff: 5 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))}, iv)
			iv.wait(t, 3)
			iv.mu.Lock()
			defer iv.mu.Unlock()
			for i, ev := range iv.events[:3] {
				if got := ev.Records[topic+"-0"]; len(got) != 1 || got[0].Offset != 0 {
					t.Errorf("invocation %d got %+v; want offset 0 again", i+1, got)
				}
			}
			if s := logs.String(); !strings.Contains(s, "redelivering") || !strings.Contains(s, tc.permanent) {
				t.Errorf("log does not say %s:\n%s", tc.permanent, s)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer the mapping's goroutine writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
