// Package landing is the MSK/self-managed Kafka triggered function that lands Debezium change
// events in the bronze layer of the lake (see package bronze for the object contract).
//
// One batch gives one Parquet object per (topic, partition) it holds, keyed by the batch's offset
// range, so a redelivered batch rewrites the same key with the same bytes. A partition is landed
// whole or not at all: when one of its objects cannot be written the response names the
// partition's first offset in the batch (batchItemFailures), and the event source redelivers
// from there. Records that are not change events go to dlq/ objects and the batch goes on.
package landing

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/emf"
	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// ObjectPutter is the one S3 call landing needs; *minio.Client satisfies it.
type ObjectPutter interface {
	PutObject(ctx context.Context, bucket, key string, r io.Reader, size int64,
		opts minio.PutObjectOptions) (minio.UploadInfo, error)
}

// Config says where objects go.
type Config struct {
	// Bucket receives bronze/ and dlq/ objects.
	Bucket string
	// Parallelism bounds the partitions landed at once (default 8).
	Parallelism int
	// FailBatch makes Handle return an error when any partition was not landed, so that the
	// whole batch is redelivered (landing is idempotent). For mappings without
	// FunctionResponseTypes ReportBatchItemFailures, which ignore the response and would
	// otherwise acknowledge what was not landed.
	FailBatch bool
	// EMF, when set, receives each invocation's counts as CloudWatch Embedded Metric Format
	// lines (os.Stdout in Lambda).
	EMF io.Writer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Handler lands Kafka batches. It is safe for concurrent use.
type Handler struct {
	cfg   Config
	s3    ObjectPutter
	stats struct{ records, tombstones, poison, objects atomic.Int64 }
}

// NewHandler returns the landing handler writing to cfg.Bucket through s3.
func NewHandler(cfg Config, s3 ObjectPutter) (*Handler, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("landing: no bucket configured")
	}
	if s3 == nil {
		return nil, errors.New("landing: no S3 client")
	}
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handler{cfg: cfg, s3: s3}, nil
}

// Response is the Lambda's answer to a Kafka batch: the partitions to redeliver, each from the
// given offset. An empty list acknowledges the whole batch.
type Response struct {
	BatchItemFailures []BatchItemFailure `json:"batchItemFailures"`
}

// BatchItemFailure names the first offset of a partition that was not landed.
type BatchItemFailure struct {
	ItemIdentifier ItemIdentifier `json:"itemIdentifier"`
}

// ItemIdentifier is a position in the batch: Partition is "<topic>-<partition>" as in the
// event's Records map.
type ItemIdentifier struct {
	Partition string `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Stats counts what the handler has seen since it was made.
type Stats struct {
	Records    int64 // change events written to bronze objects
	Tombstones int64 // skipped tombstones
	Poison     int64 // records sent to the DLQ
	Objects    int64 // objects written (bronze and DLQ)
}

// Stats returns the counters.
func (h *Handler) Stats() Stats {
	return Stats{
		Records:    h.stats.records.Load(),
		Tombstones: h.stats.tombstones.Load(),
		Poison:     h.stats.poison.Load(),
		Objects:    h.stats.objects.Load(),
	}
}

// Handle lands one batch. Failures to write S3 come back as batchItemFailures, not as an error,
// so that partitions that did land are not redelivered (unless Config.FailBatch).
func (h *Handler) Handle(ctx context.Context, ev events.KafkaEvent) (Response, error) {
	parts := make([]string, 0, len(ev.Records))
	for p := range ev.Records {
		parts = append(parts, p)
	}
	sort.Strings(parts)

	var (
		mu   sync.Mutex
		resp = Response{BatchItemFailures: []BatchItemFailure{}}
	)
	var g errgroup.Group // a bounded pool: one partition's failure must not cancel the others
	g.SetLimit(h.cfg.Parallelism)
	source := bronze.SourceID(ev.EventSourceARN + ev.BootstrapServers)
	before := h.Stats()
	for _, p := range parts {
		recs := ev.Records[p]
		if len(recs) == 0 {
			continue
		}
		g.Go(func() error {
			first, err := h.landPartition(ctx, source, recs)
			if err != nil {
				// Redelivered even when permanent, as AWS would (a discarded batch is a lost
				// change); the flag tells the operator it will not pass by itself.
				h.cfg.Logger.Error("partition not landed; asking for redelivery",
					"partition", p, "offset", first, "permanent", retry.IsPermanent(err), "err", err)
				mu.Lock()
				resp.BatchItemFailures = append(resp.BatchItemFailures, BatchItemFailure{
					ItemIdentifier: ItemIdentifier{Partition: p, Offset: first},
				})
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	h.emitMetrics(before)
	slices.SortFunc(resp.BatchItemFailures, func(a, b BatchItemFailure) int {
		return strings.Compare(a.ItemIdentifier.Partition, b.ItemIdentifier.Partition)
	})
	if h.cfg.FailBatch && len(resp.BatchItemFailures) > 0 {
		return resp, fmt.Errorf("land batch: %d partition(s) not landed, first %s@%d",
			len(resp.BatchItemFailures), resp.BatchItemFailures[0].ItemIdentifier.Partition,
			resp.BatchItemFailures[0].ItemIdentifier.Offset)
	}
	return resp, nil
}

// partitionBatch is what one partition of a batch turns into.
type partitionBatch struct {
	topic       string
	partition   int32
	first, last int64
	rows        []bronze.Record
	poison      []DLQEntry
	tombstones  int
}

// landPartition writes the DLQ objects then the bronze object of one partition's records. It
// returns the partition's first offset, which is what to redeliver from when it fails.
func (h *Handler) landPartition(ctx context.Context, source string, recs []events.KafkaRecord) (int64, error) {
	b, err := decodePartition(recs)
	if err != nil {
		return recs[0].Offset, err
	}
	for _, d := range b.poison {
		body, err := json.Marshal(d)
		if err != nil {
			return b.first, fmt.Errorf("encode dlq entry %s-%d@%d: %w", d.Topic, d.Partition, d.Offset, err)
		}
		key := bronze.DLQKey(source, d.Topic, d.Partition, d.Offset)
		if err := h.put(ctx, key, body, "application/json"); err != nil {
			return b.first, err
		}
		h.cfg.Logger.Warn("record sent to the DLQ", "key", key, "reason", d.Reason)
	}
	if len(b.rows) > 0 {
		body, err := EncodeParquet(b.rows)
		if err != nil {
			return b.first, fmt.Errorf("encode %s-%d %d-%d: %w", b.topic, b.partition, b.first, b.last, err)
		}
		commit := time.UnixMicro(b.rows[0].CommitTsUs)
		key := bronze.ObjectKey(tableOf(b.topic), source, b.topic, b.partition, b.first, b.last, commit)
		if err := h.put(ctx, key, body, "application/vnd.apache.parquet"); err != nil {
			return b.first, err
		}
	}
	h.stats.records.Add(int64(len(b.rows)))
	h.stats.tombstones.Add(int64(b.tombstones))
	h.stats.poison.Add(int64(len(b.poison)))
	return b.first, nil
}

// decodePartition decodes the records of one partition, in offset order.
func decodePartition(recs []events.KafkaRecord) (*partitionBatch, error) {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b events.KafkaRecord) int { return cmp.Compare(a.Offset, b.Offset) })
	b := &partitionBatch{
		topic: recs[0].Topic, partition: int32(recs[0].Partition),
		first: recs[0].Offset, last: recs[len(recs)-1].Offset,
		rows: make([]bronze.Record, 0, len(recs)),
	}
	if b.topic == "" {
		return b, retry.Permanent(fmt.Errorf("record at offset %d has no topic", b.first))
	}
	var scratch decodeScratch
	for i := range recs {
		rec := &recs[i]
		if rec.Topic != b.topic || int32(rec.Partition) != b.partition {
			return b, retry.Permanent(fmt.Errorf("record %s-%d@%d is filed under %s-%d",
				rec.Topic, rec.Partition, rec.Offset, b.topic, b.partition))
		}
		row, err := decodeRecord(rec, b.partition, &scratch)
		switch {
		case err == nil:
			b.rows = append(b.rows, row)
		case errors.Is(err, errTombstone):
			b.tombstones++
		case retry.IsPermanent(err):
			// Redelivery cannot mend it: set it aside, land the rest.
			reason := err.Error()
			if pe := (*PoisonError)(nil); errors.As(err, &pe) {
				reason = pe.Reason
			}
			b.poison = append(b.poison, newDLQEntry(rec, reason))
		default:
			return b, err
		}
	}
	return b, nil
}

func (h *Handler) put(ctx context.Context, key string, body []byte, contentType string) error {
	_, err := h.s3.PutObject(ctx, h.cfg.Bucket, key, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: contentType})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", h.cfg.Bucket, key, err)
	}
	h.stats.objects.Add(1)
	return nil
}

// DLQEntry is the body of a dlq/ object: the record as it came, where it came from, and why it
// was not landed. It holds no wall-clock time, so a redelivery writes the same bytes.
// DLQEntry is the JSON body of a dlq/ object: a record the landing could not decode, with its
// bytes exactly as Kafka delivered them (base64), its position and the reason.
type DLQEntry struct {
	Topic       string              `json:"topic"`
	Partition   int32               `json:"partition"`
	Offset      int64               `json:"offset"`
	TimestampMs int64               `json:"timestamp_ms"`
	Reason      string              `json:"reason"`
	KeyBase64   string              `json:"key_base64"`
	ValueBase64 string              `json:"value_base64"`
	Headers     []map[string][]byte `json:"headers,omitempty"`
}

func newDLQEntry(rec *events.KafkaRecord, reason string) DLQEntry {
	d := DLQEntry{
		Topic: rec.Topic, Partition: int32(rec.Partition), Offset: rec.Offset,
		TimestampMs: rec.Timestamp.UnixMilli(), Reason: reason,
		KeyBase64: rec.Key, ValueBase64: rec.Value,
	}
	for _, hdr := range rec.Headers {
		m := make(map[string][]byte, len(hdr))
		for k, v := range hdr {
			m[k] = v
		}
		d.Headers = append(d.Headers, m)
	}
	return d
}

// tableOf is the source table of a Debezium topic <prefix>.<schema>.<table>.
func tableOf(topic string) string {
	if i := strings.LastIndexByte(topic, '.'); i >= 0 {
		topic = topic[i+1:]
	}
	return strings.NewReplacer("/", "_", "=", "_").Replace(topic)
}

// emitMetrics writes what this invocation landed (the counters' growth since before) as EMF.
// Concurrent invocations of one handler share counters; in Lambda there is one at a time.
func (h *Handler) emitMetrics(before Stats) {
	if h.cfg.EMF == nil {
		return
	}
	now := h.Stats()
	emf.New(h.cfg.EMF).Emit(map[string]string{"Function": "cdc-landing"},
		emf.Metric{Name: "RecordsLanded", Value: float64(now.Records - before.Records), Unit: emf.Count},
		emf.Metric{Name: "DLQRecords", Value: float64(now.Poison - before.Poison), Unit: emf.Count},
		emf.Metric{Name: "TombstonesSkipped", Value: float64(now.Tombstones - before.Tombstones), Unit: emf.Count},
		emf.Metric{Name: "ObjectsWritten", Value: float64(now.Objects - before.Objects), Unit: emf.Count})
}
