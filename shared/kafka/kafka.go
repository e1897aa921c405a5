// Package kafka builds the project's Kafka clients and, for local runs and tests, an in-process
// broker (franz-go kfake). KAFKA_BROKERS points everything at a real broker instead.
package kafka

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BrokersFromEnv returns the seed brokers named in KAFKA_BROKERS (comma separated), or nil when
// it is unset and the embedded broker should be used.
func BrokersFromEnv() []string {
	var seeds []string
	for _, s := range strings.Split(os.Getenv("KAFKA_BROKERS"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

// EmbeddedConfig tunes the in-process broker. The zero value is an in-memory broker on a free
// loopback port.
type EmbeddedConfig struct {
	// Port to listen on (127.0.0.1); 0 picks a free one.
	Port int
	// DataDir keeps the broker's log on disk so a restart finds its topics and offsets; empty
	// keeps everything in memory.
	DataDir string
	// Blackhole acknowledges produced records without keeping them (benchmarks only: nothing can
	// be consumed back).
	Blackhole bool
	// SegmentBytes is the size at which a partition's log rolls to a new segment; 0 means
	// DefaultSegmentBytes.
	SegmentBytes int
}

// DefaultSegmentBytes is the embedded broker's segment size: Kafka's smallest (1 MiB), not its
// 1 GiB (kfake's 100 MiB). The broker frees a log only a whole segment at a time, when
// DeleteRecords or retention passes its end, and the in-memory broker holds each segment as one
// growing byte slice: with 100 MiB segments, `fin up --rate 200` held every record of its first
// minutes (240 -> 850 MB of RSS in 6 minutes) although the landing had committed them all.
const DefaultSegmentBytes = 1 << 20

// StartEmbedded starts an in-process single-node broker that auto-creates topics (one partition
// each, like the real broker's default) and returns its seed addresses and a stop function.
// The broker also stops when ctx ends.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (seeds []string, stop func(), err error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(cfg.Port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(1),
		kfake.BrokerConfigs(map[string]string{"log.segment.bytes": strconv.Itoa(cmp.Or(cfg.SegmentBytes, DefaultSegmentBytes))}),
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, nil, fmt.Errorf("embedded kafka: %w", err)
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir), kfake.SyncWrites())
	}
	if cfg.Blackhole {
		opts = append(opts, kfake.BlackholeProduce())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	done := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			c.Close()
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			c.Close()
		case <-done:
		}
	}()
	return c.ListenAddrs(), stop, nil
}

// NewClient returns a client for seeds whose producer settings suit change events: every record
// acknowledged by all in-sync replicas, idempotent (no duplicates from retries), ordered per
// partition, and a bounded buffer so a huge source transaction never piles up in memory (Produce
// blocks until the broker catches up). Further options are appended (consumers add theirs).
func NewClient(seeds []string, opts ...kgo.Opt) (*kgo.Client, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("kafka client: no seed brokers (set KAFKA_BROKERS or start the embedded broker)")
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.MaxBufferedRecords(20_000),
		kgo.MaxBufferedBytes(64 << 20),
		kgo.RecordRetries(10),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.AllowAutoTopicCreation(),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %s: %w", strings.Join(seeds, ","), err)
	}
	return cl, nil
}
