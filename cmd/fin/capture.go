package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
	"github.com/fin-orchestrator/fin-orchestrator/shared/localpg"
	"github.com/fin-orchestrator/fin-orchestrator/shared/objectstore"
)

func init() {
	register(command{name: "capture", summary: "stream Postgres changes to Kafka as Debezium events", run: runCapture})
}

func runCapture(ctx context.Context, args []string) error {
	fs := newFlags("capture", "[flags]")
	slot := fs.String("slot", "fin_capture", "logical replication slot (created when absent)")
	publication := fs.String("publication", "fin_cdc", "publication naming the captured tables")
	prefix := fs.String("topic-prefix", "fin", "Debezium topic.prefix: topics are <prefix>.<schema>.<table>")
	tables := fs.String("tables", strings.Join(capture.DefaultTables, ","), "captured tables, schema-qualified, in snapshot order")
	signal := fs.String("signal-table", "public.debezium_signal", "Debezium's signal.data.collection: execute-snapshot requests and snapshot watermarks")
	chunk := fs.Int("chunk-size", 4096, "rows an incremental snapshot reads (and holds) at a time")
	procs := fs.Int("procs", 0, "threads running Go code at once (GOMAXPROCS); 0: the GOMAXPROCS environment variable, else half of Go's default when the database host is this one (a socket, localhost, loopback), else Go's default")
	manifest := fs.String("manifest-bucket", "", "bucket of the destination lake that keeps the capture's manifest (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY or the AWS environment); empty: no manifest, the slot is trusted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := errors.Join(atLeast(fs, "chunk-size", *chunk, 1), atLeast(fs, "procs", *procs, 0)); err != nil {
		return err
	}
	// The capture's heap is small and churns fast (one buffer per event): collect less often,
	// within a ceiling well under the 200 MB it is allowed.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128 << 20)
	}
	pool, err := openMigrated(ctx, 2)
	if err != nil {
		return err
	}
	// Beside a local Postgres the capture runs on fewer threads than cores: the chunk reader, the
	// stream and the Kafka client's goroutines otherwise hand work between cores and spin idle
	// threads looking for it, CPU the database then lacks (on 2 cores 0.87 of the capture's CPU a
	// snapshot row; docs/benchmarks.md).
	setProcs(*procs, pool.Config().ConnConfig.Host)
	pool.Close()

	seeds := kafka.BrokersFromEnv()
	if len(seeds) == 0 {
		var stop func()
		seeds, stop, err = kafka.StartEmbedded(ctx, kafka.EmbeddedConfig{})
		if err != nil {
			return err
		}
		defer stop()
		slog.Info("no KAFKA_BROKERS: using an in-process broker", "brokers", seeds)
	}
	client, err := kafka.NewClient(seeds)
	if err != nil {
		return err
	}
	defer client.Close()
	cfg := capture.Config{
		DatabaseURL: localpg.URL(),
		Slot:        *slot,
		Publication: *publication,
		TopicPrefix: *prefix,
		Tables:      strings.Split(*tables, ","),
		SignalTable: *signal,
		ChunkSize:   *chunk,
	}
	if *manifest != "" {
		s3, err := objectstore.Open(objectstore.Config{Endpoint: os.Getenv("S3_ENDPOINT"), AccessKey: os.Getenv("S3_ACCESS_KEY"), SecretKey: os.Getenv("S3_SECRET_KEY")})
		if err != nil {
			return err
		}
		cfg.Manifest = objectstore.Objects{Client: s3, Bucket: *manifest}
	}
	return capture.Run(ctx, cfg, client)
}
