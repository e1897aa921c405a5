package stack

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// answered records which held acknowledgements the gate has let through.
type answered struct {
	mu   sync.Mutex
	acks map[string][]int64 // topic -> offsets acknowledged to the capture
}

func (a *answered) promise(r *kgo.Record, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		panic(fmt.Sprintf("produce %s: %v", r.Topic, err))
	}
	a.acks[r.Topic] = append(a.acks[r.Topic], r.Offset)
}

func (a *answered) of(topic string) []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.acks[topic])
}

// TestGateWaitsForEachTopicsOwnGroup: with one mapping, and so one consumer group, per topic,
// the capture's acknowledgement of a record waits for the group of that record's topic. Another
// group's progress on the topic (the old all-topics group that a real broker still remembers, or
// the group of another topic) must release nothing, and a topic two mappings land waits for both.
// The test commits offsets itself, in the order that would confirm unlanded WAL if the gate
// looked at the wrong group, and runs the gate's release step after each commit.
func TestGateWaitsForEachTopicsOwnGroup(t *testing.T) {
	const (
		customers    = "fin.public.customers"
		accounts     = "fin.public.accounts"
		transactions = "fin.public.transactions"
		heartbeat    = "__debezium-heartbeat.fin"
	)
	client := testBroker(t, customers, accounts, transactions, heartbeat)
	admin := kadm.NewClient(client)
	ctx := t.Context()

	gate := newLandedGate(client, client, map[string][]string{
		customers:    {"landing-customers"},
		accounts:     {"landing-accounts"},
		transactions: {"landing-transactions", "audit-transactions"}, // two mappings on one topic
	}, slog.Default())
	got := &answered{acks: map[string][]int64{}}
	for _, topic := range []string{customers, accounts, transactions, heartbeat} {
		for range 2 {
			gate.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte("{}")}, got.promise)
		}
	}
	// The heartbeats, on a topic nobody lands, are answered as soon as the broker has them.
	waitFor(t, "heartbeats answered and the rest held", func() bool {
		gate.mu.Lock()
		defer gate.mu.Unlock()
		held := 0
		for _, h := range gate.waiting {
			held += len(h)
		}
		return len(got.of(heartbeat)) == 2 && held == 6
	})

	commit := func(group, topic string, next int64) {
		t.Helper()
		o := kadm.Offsets{}
		o.AddOffset(topic, 0, next, -1)
		resp, err := admin.CommitOffsets(ctx, group, o)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit %s %s@%d: %v", group, topic, next, err)
		}
		gate.release(ctx)
	}
	want := func(step string, c, a, tr []int64) {
		t.Helper()
		for topic, w := range map[string][]int64{customers: c, accounts: a, transactions: tr} {
			if g := got.of(topic); !slices.Equal(g, w) {
				t.Errorf("%s: %s acknowledged %v, want %v", step, topic, g, w)
			}
		}
	}

	// The old single group of the three-topic mapping has committed everything: nothing moves.
	for _, topic := range []string{customers, accounts, transactions} {
		commit("fin-cdc-landing-local", topic, 2)
	}
	want("old group past everything", nil, nil, nil)
	// The customers group committing accounts (it never would; a wrong gate might read it).
	commit("landing-customers", accounts, 2)
	want("another topic's group", nil, nil, nil)
	commit("landing-customers", customers, 1)
	want("customers landed to 1", []int64{0}, nil, nil)
	commit("landing-accounts", accounts, 2)
	want("accounts landed", []int64{0}, []int64{0, 1}, nil)
	commit("landing-transactions", transactions, 2)
	want("one of two transactions groups", []int64{0}, []int64{0, 1}, nil)
	commit("audit-transactions", transactions, 1)
	want("both transactions groups to 1", []int64{0}, []int64{0, 1}, []int64{0})
	commit("audit-transactions", transactions, 2)
	commit("landing-customers", customers, 2)
	want("all landed", []int64{0, 1}, []int64{0, 1}, []int64{0, 1})
}

// TestGateForgetsReleasedRecords: once the landing has committed past a record and the gate has
// answered it, the gate keeps no reference to it, so its value can be collected while later
// records wait; a queue resliced from the front without clearing kept every released record of
// its backing array (up to twice the most ever waiting) alive until the next reallocation.
func TestGateForgetsReleasedRecords(t *testing.T) {
	const topic, n, landed = "fin.public.transactions", 100, 60
	client := testBroker(t, topic)
	ctx := t.Context()
	gate := newLandedGate(client, client, map[string][]string{topic: {"landing"}}, slog.Default())
	got := &answered{acks: map[string][]int64{}}
	refs := make([]weak.Pointer[kgo.Record], n)
	for i := range n {
		r := &kgo.Record{Topic: topic, Value: make([]byte, 1000)}
		refs[i] = weak.Make(r)
		gate.Produce(ctx, r, got.promise)
	}
	waitFor(t, "every record held", func() bool {
		gate.mu.Lock()
		defer gate.mu.Unlock()
		return len(gate.waiting[topicPartition{topic, 0}]) == n
	})
	o := kadm.Offsets{}
	o.AddOffset(topic, 0, landed, -1)
	if resp, err := kadm.NewClient(client).CommitOffsets(ctx, "landing", o); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	gate.release(ctx)
	if acks := got.of(topic); len(acks) != landed {
		t.Fatalf("%d records answered, want %d", len(acks), landed)
	}
	runtime.GC()
	runtime.GC()
	kept := 0
	for i := range landed {
		if refs[i].Value() != nil {
			kept++
		}
	}
	if kept > 0 {
		t.Errorf("%d of %d records answered are still reachable", kept, landed)
	}
	for i := landed; i < n; i++ {
		if refs[i].Value() == nil {
			t.Fatalf("record %d, not yet landed, was collected", i)
		}
	}
	runtime.KeepAlive(gate)
}

// testBroker starts an in-process broker with topics (one partition each) and returns a client of
// it; both stop when the test ends.
func testBroker(t *testing.T, topics ...string) *kgo.Client {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestGateTrimKeepsUnlandedAndRetained: trim deletes a record only once every group of its topic
// has committed past it and, with a retention, once it is older than that: each case produces
// three records stamped two minutes before the trim and three stamped at it (fixture times), has
// the topic's two groups commit, trims, and reads where the log now starts.
func TestGateTrimKeepsUnlandedAndRetained(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		retain    time.Duration
		committed [2]int64 // next offsets of the two groups; -1: no commit
		wantStart int64
	}{
		{"both landed, no retention", 0, [2]int64{5, 6}, 5},
		{"one group has not committed", 0, [2]int64{6, -1}, 0},
		{"both landed, one minute retained", time.Minute, [2]int64{6, 6}, 3},
		{"landing behind the retention", time.Minute, [2]int64{2, 6}, 2},
		{"everything younger than the retention", time.Hour, [2]int64{6, 6}, 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("fin.public.t%d", i)
			client := testBroker(t, topic)
			ctx, admin := t.Context(), kadm.NewClient(client)
			for j := range 6 {
				stamp := now.Add(-2 * time.Minute)
				if j >= 3 {
					stamp = now
				}
				if err := client.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("{}"), Timestamp: stamp}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			groups := []string{"landing", "audit"}
			for k, next := range tc.committed {
				if next < 0 {
					continue
				}
				commitNext(t, admin, topic, groups[k], next)
			}
			gate := newLandedGate(client, client, map[string][]string{topic: groups}, slog.Default())
			gate.retain = tc.retain
			trimmedTo(t, gate, admin, topic, now, tc.wantStart)
		})
	}
}

// TestGateTrimBoundsBytesOfLandedRecords: with a byte bound, trim deletes landed records however
// young once the partition holds more than the bound, as Kafka's retention.bytes would, but never
// one the landing has not committed; and the landing, behind the bound, still reads every record
// it has yet to take. Records go through the gate (which sizes them), all stamped a minute before
// the trim under an hour's retention, so only the byte bound can delete them.
func TestGateTrimBoundsBytesOfLandedRecords(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		sizes     []int // value bytes of each record, offsets 0, 1, ...
		committed int64 // the landing group's next offset
		bound     int64
		wantStart int64
	}{
		{"under the bound", []int{100, 100, 100, 100}, 4, 1000, 0},
		{"no bound", []int{400, 400, 400, 400}, 4, 0, 0},
		{"over the bound, all landed", []int{400, 400, 400, 400}, 4, 1000, 2},
		{"over the bound, landing behind", []int{400, 400, 400, 400}, 1, 1000, 1},
		{"over the bound, nothing landed", []int{400, 400, 400, 400}, 0, 1000, 0},
		{"uneven sizes", []int{900, 50, 50, 500, 400}, 5, 1000, 1},
		{"the bound between records", []int{600, 600, 600}, 3, 1000, 2},
		{"the last record alone is over", []int{100, 2000}, 2, 1000, 2},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("fin.public.b%d", i)
			client := testBroker(t, topic)
			ctx, admin := t.Context(), kadm.NewClient(client)
			gate := newLandedGate(client, client, map[string][]string{topic: {"landing"}}, slog.Default())
			gate.retain, gate.retainBytes = time.Hour, tc.bound
			for j, n := range tc.sizes {
				rec := &kgo.Record{Topic: topic, Value: fmt.Appendf(make([]byte, 0, n), "%0*d", n, j), Timestamp: now.Add(-time.Minute)}
				gate.Produce(ctx, rec, func(*kgo.Record, error) {})
			}
			waitFor(t, "every record produced", func() bool {
				gate.mu.Lock()
				defer gate.mu.Unlock()
				return tc.bound == 0 || len(gate.sizes[topicPartition{topic, 0}]) == len(tc.sizes)
			})
			waitFor(t, "every record produced", func() bool {
				ends, err := admin.ListEndOffsets(ctx, topic)
				o, _ := ends.Lookup(topic, 0)
				return err == nil && o.Offset == int64(len(tc.sizes))
			})
			if tc.committed > 0 {
				commitNext(t, admin, topic, "landing", tc.committed)
			}
			trimmedTo(t, gate, admin, topic, now, tc.wantStart)
			if got := readFrom(t, client, topic, tc.committed, len(tc.sizes)); !slices.Equal(got, offsetsFrom(tc.committed, len(tc.sizes))) {
				t.Errorf("the landing, from its committed offset %d, read offsets %v", tc.committed, got)
			}
		})
	}
}

// commitNext commits group's next offset of topic's partition 0.
func commitNext(t *testing.T, admin *kadm.Client, topic, group string, next int64) {
	t.Helper()
	o := kadm.Offsets{}
	o.AddOffset(topic, 0, next, -1)
	if resp, err := admin.CommitOffsets(t.Context(), group, o); err != nil || resp.Error() != nil {
		t.Fatalf("commit %s: %v %v", group, err, resp.Error())
	}
}

// trimmedTo trims topic at now through gate and checks that its partition 0 then starts at want.
func trimmedTo(t *testing.T, gate *landedGate, admin *kadm.Client, topic string, now time.Time, want int64) {
	t.Helper()
	gate.trim(t.Context(), now)
	starts, err := admin.ListStartOffsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := starts.Lookup(topic, 0); got.Offset != want {
		t.Errorf("the log starts at %d after the trim, want %d", got.Offset, want)
	}
}

// readFrom consumes topic's partition 0 from offset from up to end (exclusive) and returns the
// offsets it read.
func readFrom(t *testing.T, seed *kgo.Client, topic string, from int64, end int) []int64 {
	t.Helper()
	var got []int64
	if from >= int64(end) {
		return got
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(seed.OptValue(kgo.SeedBrokers).([]string)...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for len(got) < end-int(from) {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s from %d: got %v: %v", topic, from, got, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Offset) })
	}
	return got
}

func offsetsFrom(from int64, end int) []int64 {
	var o []int64
	for i := from; i < int64(end); i++ {
		o = append(o, i)
	}
	return o
}

// TestGateByteBoundKeepsBrokerHeapFlat: 30 MB of landed records through an in-memory broker with
// a byte bound (and an hour's retention, so time deletes nothing) leave its log holding a few
// times the bound (a 1 MiB segment is freed whole, and its buffer doubles as it grows), and with
// a bound beyond them all 30 MB. At fin up's default bound each of its four topics holds a few
// MiB of heap (4-6 measured; the ceiling is 12 MiB, since the heap is the process's and a run in CI
// once read 8.1 MiB: still well apart from the 24 MiB and more of no bound) however fast records come (at 8 MiB, the default before, 12 MB
// each: `fin up` held 43 MB of broker log at minute 15 of a run at 83 operations a second).
// Records are random (the stack produces uncompressed); the landing commits all after each round.
func TestGateByteBoundKeepsBrokerHeapFlat(t *testing.T) {
	for _, tc := range []struct {
		name               string
		bound, least, most int64
	}{
		{"a bound beyond the records", 1 << 40, 24 << 20, 64 << 20},
		{"2 MiB", 2 << 20, 0, 12 << 20},
		{"fin up's default", DefaultKafkaRetentionBytes, 0, 12 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if held := brokerLogHeap(t, tc.bound); held < tc.least || held > tc.most {
				t.Errorf("the log held %d KiB of heap after 30 MB of records with a %d KiB bound; want %d-%d KiB",
					held>>10, tc.bound>>10, tc.least>>10, tc.most>>10)
			}
		})
	}
}

// brokerLogHeap produces 30 MB of records through a gate with the byte bound into a new
// in-memory broker, the landing committing each round, and returns the heap its log then holds.
func brokerLogHeap(t *testing.T, bound int64) int64 {
	const topic, rounds, perRound, size = "fin.public.transactions", 6, 5000, 1000
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic),
		kfake.BrokerConfigs(map[string]string{"log.segment.bytes": "1048576"}))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, admin := t.Context(), kadm.NewClient(client)
	gate := newLandedGate(client, client, map[string][]string{topic: {"landing"}}, slog.Default())
	gate.retain, gate.retainBytes = time.Hour, bound
	heapInuse := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	for range rounds {
		for range perRound {
			v := make([]byte, size)
			rand.Read(v)
			gate.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, func(*kgo.Record, error) {})
		}
		if err := client.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		ends, err := admin.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		o := kadm.Offsets{}
		o.Add(kadm.Offset{Topic: topic, Partition: 0, At: ends[topic][0].Offset, LeaderEpoch: -1})
		if resp, err := admin.CommitOffsets(ctx, "landing", o); err != nil || resp.Error() != nil {
			t.Fatalf("commit: %v %v", err, resp.Error())
		}
		waitFor(t, "the produce callbacks", func() bool {
			gate.mu.Lock()
			defer gate.mu.Unlock()
			s := gate.sizes[topicPartition{topic, 0}]
			return len(s) > 0 && s[len(s)-1].offset == ends[topic][0].Offset-1
		})
		gate.release(ctx)
		gate.trim(ctx, time.Now())
	}
	// What the log holds is what the heap gives back once every landed record is deleted.
	held := heapInuse()
	gate.retain, gate.retainBytes = 0, 0
	gate.trim(ctx, time.Now())
	grown := int64(held) - int64(heapInuse())
	t.Logf("bound %d KiB: the log held %d KiB", bound>>10, grown>>10)
	return grown
}
