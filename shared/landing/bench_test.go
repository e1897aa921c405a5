package landing_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/minio/minio-go/v7"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
)

// scripts/bench.d/landing.sh runs these with GOMAXPROCS=1 and prints the landing rate beside
// the references.

// benchBatch is one partition's batch of realistic transaction inserts and account updates
// (about 700 bytes a value, like the Go capture's and Debezium's).
func benchBatch(n int) events.KafkaEvent {
	recs := make([]events.KafkaRecord, n)
	for i := range recs {
		var key, value string
		if i%2 == 0 {
			key = fmt.Sprintf(`{"id":"%08d-7e1f-4c2a-9b3d-5f6a7b8c9d0e"}`, i)
			value = change("c", "transactions", int64(100000+i), "", fmt.Sprintf(
				`{"id":"%08d-7e1f-4c2a-9b3d-5f6a7b8c9d0e","account_id":"a1b2c3d4-0000-4000-8000-%012d",`+
					`"amount":"%d.%02d","currency":"EUR","kind":"transfer","description":"invoice %d",`+
					`"created_at":"2026-11-25T10:00:00.123456Z"}`, i, i%977, i*7%100000, i%100, i))
		} else {
			before := fmt.Sprintf(`{"id":"a1b2c3d4-0000-4000-8000-%012d","customer_id":"c0ffee00-0000-4000-8000-%012d",`+
				`"balance":"%d.%02d","currency":"EUR","status":"active","updated_at":"2026-11-25T10:00:00Z"}`, i%977, i%311, i, i%100)
			key = fmt.Sprintf(`{"id":"a1b2c3d4-0000-4000-8000-%012d"}`, i%977)
			value = change("u", "accounts", int64(100000+i), before, before)
		}
		recs[i] = record("fin.public.transactions", 0, int64(i), key, value)
	}
	return batch(recs...)
}

// discard is an S3 that keeps nothing: the benchmark measures decoding and encoding.
type discard struct{}

func (discard) PutObject(_ context.Context, _, _ string, r io.Reader, size int64,
	_ minio.PutObjectOptions) (minio.UploadInfo, error) {
	n, err := io.Copy(io.Discard, r)
	return minio.UploadInfo{Size: n}, err
}

// BenchmarkLanding is the landing function's work on a batch: base64 and envelope decode,
// Parquet (zstd) encode of one object.
func BenchmarkLanding(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			ev := benchBatch(size)
			h, err := landing.NewHandler(landing.Config{Bucket: "bench", Parallelism: 1}, discard{})
			if err != nil {
				b.Fatal(err)
			}
			cpu := startCPU(b)
			for b.Loop() {
				resp, err := h.Handle(context.Background(), ev)
				if err != nil || len(resp.BatchItemFailures) > 0 {
					b.Fatalf("Handle: %+v, %v", resp, err)
				}
			}
			cpu.report(b, size)
		})
	}
}

// BenchmarkReferenceJSONDecode is the reference: encoding/json decoding the same values into
// generic maps (numbers kept as json.Number), with their base64, and nothing else.
func BenchmarkReferenceJSONDecode(b *testing.B) {
	ev := benchBatch(1000)
	recs := ev.Records["fin.public.transactions-0"]
	cpu := startCPU(b)
	for b.Loop() {
		for i := range recs {
			raw, err := base64.StdEncoding.DecodeString(recs[i].Value)
			if err != nil {
				b.Fatal(err)
			}
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu.report(b, len(recs))
}

// BenchmarkReferenceParquetWrite is the other reference: parquet-go writing the same rows,
// already decoded, with the same zstd level.
func BenchmarkReferenceParquetWrite(b *testing.B) {
	ev := benchBatch(1000)
	recs := ev.Records["fin.public.transactions-0"]
	rows := make([]bronze.Record, len(recs))
	for i := range recs {
		raw, _ := base64.StdEncoding.DecodeString(recs[i].Value)
		s := string(raw)
		rows[i] = bronze.Record{Topic: recs[i].Topic, Offset: recs[i].Offset, Op: "c", After: &s}
	}
	cpu := startCPU(b)
	for b.Loop() {
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[bronze.Record](&buf, parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}))
		if _, err := w.Write(rows); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b, len(rows))
}

// cpuClock reports a benchmark's rate both per wall-clock second and per second of CPU time
// the process used. On a shared machine other processes take the core away at random; the CPU
// rate is what one core does, and the figure the landing target is about.
type cpuClock struct{ start time.Duration }

func startCPU(b *testing.B) cpuClock {
	b.Helper()
	b.ResetTimer()
	return cpuClock{start: processCPU(b)}
}

func (c cpuClock) report(b *testing.B, perOp int) {
	b.Helper()
	records := float64(perOp * b.N)
	b.ReportMetric(records/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(records/(processCPU(b)-c.start).Seconds(), "records/cpu-s")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
