package kafka

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestBrokersFromEnv(t *testing.T) {
	tests := []struct {
		env  string
		want []string
	}{
		{"", nil},
		{"127.0.0.1:9092", []string{"127.0.0.1:9092"}},
		{" a:1, b:2 ,", []string{"a:1", "b:2"}},
	}
	for _, tc := range tests {
		t.Setenv("KAFKA_BROKERS", tc.env)
		if got := BrokersFromEnv(); !slices.Equal(got, tc.want) {
			t.Errorf("KAFKA_BROKERS=%q: got %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestEmbeddedBrokerKeepsRecordsAndTombstones(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seeds, stop, err := StartEmbedded(ctx, EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cl, err := NewClient(seeds, kgo.ConsumeTopics("fin.public.t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sent := []*kgo.Record{
		{Topic: "fin.public.t", Key: []byte(`{"id":1}`), Value: []byte(`{"op":"d"}`)},
		{Topic: "fin.public.t", Key: []byte(`{"id":1}`)}, // tombstone
	}
	if err := cl.ProduceSync(ctx, sent...).FirstErr(); err != nil {
		t.Fatalf("produce to the embedded broker (auto-created topic): %v", err)
	}
	var got []*kgo.Record
	for len(got) < len(sent) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back %d of %d records", len(got), len(sent))
		}
		got = append(got, fs.Records()...)
	}
	if string(got[0].Value) != `{"op":"d"}` || got[1].Value != nil || string(got[1].Key) != `{"id":1}` {
		t.Errorf("read back %q/%q and %q/%v; want the record, then a tombstone (nil value)", got[0].Key, got[0].Value, got[1].Key, got[1].Value)
	}
}

func TestEmbeddedBrokerDataDirSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	seeds, stop, err := StartEmbedded(ctx, EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "kept", Value: []byte("v1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	stop()

	seeds, stop, err = StartEmbedded(ctx, EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatalf("restart on %s: %v", dir, err)
	}
	defer stop()
	cl, err = NewClient(seeds, kgo.ConsumeTopics("kept"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(ctx)
	if ctx.Err() != nil || len(fs.Records()) != 1 || string(fs.Records()[0].Value) != "v1" {
		t.Fatalf("after a restart the broker should still hold the record written before: %v %v", fs.Errors(), fs.Records())
	}
}

// TestEmbeddedBrokerFreesDeletedRecords: records deleted below the log start (what the stack's
// landed gate does once the landing has committed them) must leave the in-memory broker's heap,
// not stay until a 100 MiB segment fills. 32 MiB go in; after DeleteRecords up to the last record
// (new records keep arriving behind the landed ones, so the active segment is never emptied), the
// live heap must be back within a few segments of where it started.
func TestEmbeddedBrokerFreesDeletedRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seeds, stop, err := StartEmbedded(ctx, EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cl, err := NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const topic, records, size = "fin.public.big", 32 << 10, 1 << 10
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("{}")}).FirstErr(); err != nil {
		t.Fatal(err) // the topic exists before the baseline
	}
	before := liveHeap()
	value := make([]byte, size)
	for i := 0; i < records; i += 1024 {
		batch := make([]*kgo.Record, 1024)
		for j := range batch {
			batch[j] = &kgo.Record{Topic: topic, Value: value}
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	full := liveHeap()
	if full-before < records*size/2 {
		t.Fatalf("the broker holds %d MiB after 32 MiB were produced: the measure does not see its log", (full-before)>>20)
	}
	del := kadm.Offsets{}
	del.AddOffset(topic, 0, records, -1) // offsets 0..records were written: the last stays
	resp, err := kadm.NewClient(cl).DeleteRecords(ctx, del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	if after := liveHeap(); after > before+4<<20 {
		t.Errorf("live heap %d MiB before, %d MiB with 32 MiB of records, %d MiB after all but the last were deleted: the broker kept them",
			before>>20, full>>20, after>>20)
	}
}

// liveHeap is the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
