package eventsource_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/eventsource"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
)

// flakyS3 fails every put while down is set, as an S3 outage would.
type flakyS3 struct {
	landing.ObjectPutter
	down atomic.Bool
}

func (f *flakyS3) PutObject(ctx context.Context, b, key string, r io.Reader, size int64,
	opts minio.PutObjectOptions) (minio.UploadInfo, error) {
	if f.down.Load() {
		return minio.UploadInfo{}, errors.New("503 Service Unavailable (injected outage)")
	}
	return f.ObjectPutter.PutObject(ctx, b, key, r, size, opts)
}

// TestPipelineKafkaToBronze runs the local path as `fin up` wires it: Debezium-shaped records in
// Kafka, the event-source mapping invoking the landing handler through aws-lambda-go's handler
// adapter (JSON in, JSON out, as in Lambda), objects in the local S3 and its ObjectCreated events.
// S3 is down for the first batches: nothing may be committed until it is back, then everything
// lands once and the group's offsets reach the end.
func TestPipelineKafkaToBronze(t *testing.T) {
	addr, produce := broker(t)
	const bucket = "lake"
	var (
		mu      sync.Mutex
		created []string
	)
	srv, err := s3local.Start(t.Context(), "127.0.0.1:0", filepath.Join(t.TempDir(), "s3"), func(ev events.S3Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range ev.Records {
			created = append(created, r.S3.Object.URLDecodedKey)
		}
	}, s3local.WithBuckets(bucket), s3local.WithCredentials(s3local.Credentials{AccessKeyID: "k", SecretAccessKey: "s"}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := objectstore.Open(objectstore.Config{Endpoint: srv.URL, AccessKey: "k", SecretKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	s3 := &flakyS3{ObjectPutter: client}
	s3.down.Store(true)
	h, err := landing.NewHandler(landing.Config{Bucket: bucket}, s3)
	if err != nil {
		t.Fatal(err)
	}

	event := func(op string, lsn int, balance string) []byte {
		img := fmt.Sprintf(`{"id":"a1","balance":"%s"}`, balance)
		before, after := "null", img
		if op == "d" {
			before, after = img, "null"
		}
		return fmt.Appendf(nil, `{"before":%s,"after":%s,"source":{"ts_ms":1764115199123,"ts_us":1764115199123456,`+
			`"snapshot":"false","schema":"public","table":"accounts","txId":9,"lsn":%d},"op":"%s","ts_ms":1764115199200}`,
			before, after, lsn, op)
	}
	key := []byte(`{"id":"a1"}`)
	produce(0, key, event("c", 100, "10.00"))
	produce(0, key, event("u", 200, "10.01"))
	produce(0, key, []byte("poison"))
	produce(0, key, event("d", 300, "10.01"))
	produce(0, key, nil) // tombstone
	produce(1, []byte(`{"id":"a2"}`), event("r", 50, "99999999999999.99"))

	invocations := atomic.Int32{}
	fn := lambda.NewHandler(h.Handle)
	counting := invokerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		invocations.Add(1)
		return fn.Invoke(ctx, payload)
	})
	run(t, eventsource.Config{Brokers: []string{addr}, Topic: topic, GroupID: "landing",
		BatchSize: 100, BatchingWindow: 200 * time.Millisecond, RetryBackoff: 50 * time.Millisecond}, counting)

	admin, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	committed := func() map[int32]int64 {
		offs, err := kadm.NewClient(admin).FetchOffsets(context.Background(), "landing")
		if err != nil {
			t.Fatalf("fetch offsets: %v", err)
		}
		got := map[int32]int64{}
		offs.Each(func(o kadm.OffsetResponse) { got[o.Partition] = o.At })
		return got
	}

	deadline := time.Now().Add(10 * time.Second)
	for invocations.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d invocations in 10s while S3 is down; want retries", invocations.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := committed(); len(c) != 0 {
		t.Fatalf("offsets %v committed while S3 was down", c)
	}
	s3.down.Store(false)

	src := bronze.SourceID(addr) // self-managed: the bootstrap servers name the cluster
	want := []string{
		"bronze/accounts/dt=2025-11-25/fin.public.accounts-0-0-4-" + src + ".parquet",
		"bronze/accounts/dt=2025-11-25/fin.public.accounts-1-0-0-" + src + ".parquet",
		"dlq/fin.public.accounts/" + src + "-0-2.json",
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		c := committed()
		if c[0] == 5 && c[1] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets %v 10s after S3 came back; want partition 0 at 5, 1 at 1", c)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var keys []string
	for o := range client.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		keys = append(keys, o.Key)
	}
	if !slices.Equal(keys, want) {
		t.Errorf("objects %v, want %v", keys, want)
	}
	mu.Lock()
	slices.Sort(created)
	got := strings.Join(created, " ")
	mu.Unlock()
	if got != strings.Join(want, " ") {
		t.Errorf("ObjectCreated events for %s; want one for each of %v", got, want)
	}
	if s := h.Stats(); s.Records != 4 || s.Poison != 1 || s.Tombstones != 1 {
		t.Errorf("landing stats %+v; want 4 records, 1 poison, 1 tombstone", s)
	}
}

type invokerFunc func(ctx context.Context, payload []byte) ([]byte, error)

func (f invokerFunc) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return f(ctx, payload)
}
