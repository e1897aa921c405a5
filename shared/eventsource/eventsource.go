// Package eventsource is the local stand-in for Lambda's Kafka event-source mapping (MSK or
// self-managed Kafka): a consumer group that gathers records into batches by BatchSize and
// MaximumBatchingWindowInSeconds, invokes a function with the events.KafkaEvent JSON that AWS
// would send, honours the batchItemFailures in its answer, and commits offsets only for what the
// function acknowledged. As AWS's pollers do, it goes on polling while a batch is invoked, so a
// batch's window runs from its first record's arrival. Delivery is at least once: a batch may
// come again after a failure, a crash or a rebalance, and the function must be idempotent (the
// landing function is).
package eventsource

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/awsrules"
	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// Event sources as AWS names them in the event.
const (
	SourceMSK         = "aws:kafka"
	SourceSelfManaged = "SelfManagedKafka"
)

// Defaults and limits of the AWS mapping; the limits of BatchSize and the batching window are
// those of Lambda's API model (shared/awsrules).
const (
	DefaultBatchSize = 100
	DefaultWindow    = 500 * time.Millisecond
	// MaxPayload is Lambda's synchronous invocation payload limit; a batch is cut before it.
	MaxPayload = 6 * 1024 * 1024
)

// Invoker runs the function on one event payload, like a Lambda invocation: lambda.NewHandler
// of a handler func satisfies it, and so does a client of a running aws-lambda-rie.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Config is one event-source mapping.
type Config struct {
	Brokers []string
	// Topic is the mapping's one topic: Lambda takes exactly one per mapping, and several
	// topics take several mappings, each with its own consumer group.
	Topic string
	// GroupID is the consumer group (AWS uses the mapping's UUID unless one is configured).
	GroupID string
	// BatchSize is the most records in one invocation (default 100, at most 10,000).
	BatchSize int
	// BatchingWindow is MaximumBatchingWindowInSeconds: how long to gather records after the
	// first one before invoking with a batch smaller than BatchSize (default 500 ms).
	BatchingWindow time.Duration
	// EventSource is SourceMSK or SourceSelfManaged (the default); EventSourceARN is the MSK
	// cluster's ARN.
	EventSource    string
	EventSourceARN string
	// StartAtLatest starts a new group at the end of the topics (LATEST) instead of the
	// beginning (TRIM_HORIZON, the default).
	StartAtLatest bool
	// RetryBackoff is the first wait before redelivering a failed batch, doubling up to
	// MaxRetryBackoff (defaults 500 ms and 30 s).
	RetryBackoff, MaxRetryBackoff time.Duration
	// Timeout is the function's timeout (template.yaml's Timeout): an invocation that runs
	// longer is cancelled and counts as failed. 0 means none.
	Timeout time.Duration
	// ClientOpts are passed to the Kafka client (TLS, SASL, ...).
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
}

func (c *Config) validate() error {
	if len(c.Brokers) == 0 || c.Topic == "" || c.GroupID == "" {
		return errors.New("event source: brokers, topic and group id are required")
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if err := awsrules.Check("lambda.CreateEventSourceMapping.BatchSize", c.BatchSize); err != nil {
		return fmt.Errorf("event source: BatchSize: %w", err)
	}
	if c.BatchingWindow == 0 {
		c.BatchingWindow = DefaultWindow
	}
	// AWS takes whole seconds; a part of one counts as the next (the default is 500 ms).
	window := int(math.Ceil(c.BatchingWindow.Seconds()))
	if err := awsrules.Check("lambda.CreateEventSourceMapping.MaximumBatchingWindowInSeconds", window); err != nil {
		return fmt.Errorf("event source: batching window %s: %w", c.BatchingWindow, err)
	}
	switch c.EventSource {
	case "":
		c.EventSource = SourceSelfManaged
	case SourceSelfManaged, SourceMSK:
	default:
		return fmt.Errorf("event source: %q, want %s or %s", c.EventSource, SourceMSK, SourceSelfManaged)
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 500 * time.Millisecond
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		c.MaxRetryBackoff = max(30*time.Second, c.RetryBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Run consumes until ctx is done, then leaves the group and returns nil. It returns an error
// only when the mapping cannot start.
func Run(ctx context.Context, cfg Config, fn Invoker) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	m := &mapping{cfg: cfg, fn: fn, more: make(chan struct{}, 1), room: make(chan struct{}, 1)}
	reset := kgo.NewOffset().AtStart()
	if cfg.StartAtLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.GroupID),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(reset),
		kgo.OnPartitionsRevoked(m.forget),
		kgo.OnPartitionsLost(m.forget),
	}, cfg.ClientOpts...)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("event source %s: kafka client: %w", cfg.GroupID, err)
	}
	m.client = client
	defer client.Close()
	pctx, stop := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		m.poll(pctx)
	}()
	m.loop(pctx)
	stop()
	<-polled
	return nil
}

type mapping struct {
	cfg    Config
	fn     Invoker
	client *kgo.Client

	// invoking is held while a batch is invoked and committed, so that a rebalance waits for it.
	invoking sync.Mutex
	// mu guards pending: records polled but not yet acknowledged, in poll order, each with the
	// time the poller received it; the first inFlight of them are the batch being invoked.
	mu       sync.Mutex
	pending  []polled
	inFlight int
	// more wakes gather when records arrive; room wakes the poller when records leave.
	more, room chan struct{}
}

type polled struct {
	rec *kgo.Record
	at  time.Time
}

// forget drops the pending records of partitions this member no longer owns: their next owner
// starts from the committed offset.
func (m *mapping) forget(_ context.Context, _ *kgo.Client, gone map[string][]int32) {
	m.invoking.Lock()
	defer m.invoking.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending = slices.DeleteFunc(m.pending, func(p polled) bool { return containsPartition(gone[p.rec.Topic], p.rec.Partition) })
	signal(m.room)
}

func containsPartition(ps []int32, p int32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// signal wakes a waiter on c without blocking: c has room for one wake-up, which is enough
// because the waiter looks at pending again whenever it wakes.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// loop redelivers every batch that was not acknowledged, permanent failures included: AWS's
// Kafka mapping retries until the function succeeds (MaximumRetryAttempts -1, the default), and
// the emulation has no on-failure destination to hand a batch to, so none is dropped. A
// permanent failure (retry.IsPermanent: the function or its answer will fail the same way
// again) is logged as such, for the partition stays stuck until someone mends it; the records
// the function can never land are its business (the landing sends them to its DLQ).
// It is not retry.Do: it redelivers without a limit, gathers the next records between tries,
// and starts the backoff again after each acknowledged batch.
func (m *mapping) loop(ctx context.Context) {
	backoff := retry.Backoff{First: m.cfg.RetryBackoff, Max: m.cfg.MaxRetryBackoff}
	for ctx.Err() == nil {
		if !m.gather(ctx) {
			return
		}
		switch err := m.invokeOnce(ctx); {
		case err == nil:
			backoff.Reset()
		case ctx.Err() != nil:
			return
		default:
			wait := backoff.Next()
			m.cfg.Logger.Error("kafka batch not acknowledged; redelivering", "group", m.cfg.GroupID,
				"retry_in", wait, "permanent", retry.IsPermanent(err), "err", err)
			if retry.Sleep(ctx, wait) != nil {
				return
			}
		}
	}
}

// poll fetches records into pending until ctx is done, while a batch is being invoked too: like
// AWS's pollers, which go on reading a partition while its previous batch runs, so the next
// batch's window starts when its first record arrives, not when the previous invocation returns
// (a slow landing would otherwise stretch every batch by its own duration). It holds at most one
// batch besides the one in flight.
func (m *mapping) poll(ctx context.Context) {
	for ctx.Err() == nil {
		m.mu.Lock()
		queued := m.pending[m.inFlight:]
		n, size := len(queued), payloadSize(queued)
		m.mu.Unlock()
		if n >= m.cfg.BatchSize || size >= MaxPayload {
			select {
			case <-ctx.Done():
				return
			case <-m.room:
			}
			continue
		}
		fetches := m.client.PollRecords(ctx, m.cfg.BatchSize-n)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				m.cfg.Logger.Warn("kafka fetch", "topic", topic, "partition", p, "err", err)
			}
		})
		if recs := fetches.Records(); len(recs) > 0 {
			now := time.Now()
			m.mu.Lock()
			for _, r := range recs {
				m.pending = append(m.pending, polled{r, now})
			}
			m.mu.Unlock()
			signal(m.more)
		}
	}
}

// gather waits until pending holds a full batch or the batching window since the first pending
// record arrived has passed. It returns false when ctx is done.
func (m *mapping) gather(ctx context.Context) bool {
	for {
		m.mu.Lock()
		n, size := len(m.pending), payloadSize(m.pending)
		var first time.Time
		if n > 0 {
			first = m.pending[0].at
		}
		m.mu.Unlock()
		if n >= m.cfg.BatchSize || size >= MaxPayload {
			return true
		}
		var closes <-chan time.Time
		stop := func() bool { return false }
		if n > 0 {
			wait := time.Until(first.Add(m.cfg.BatchingWindow))
			if wait <= 0 {
				return true
			}
			t := time.NewTimer(wait)
			closes, stop = t.C, t.Stop
		}
		select {
		case <-ctx.Done():
			stop()
			return false
		case <-m.more:
		case <-closes:
		}
		stop()
	}
}

// invokeOnce invokes the function with the next batch and commits what it acknowledged.
func (m *mapping) invokeOnce(ctx context.Context) error {
	m.invoking.Lock()
	defer m.invoking.Unlock()
	m.mu.Lock()
	batch := m.nextBatch()
	m.inFlight = len(batch)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.inFlight = 0
		m.mu.Unlock()
		signal(m.room)
	}()
	if len(batch) == 0 {
		return nil // a rebalance took the partitions while we gathered
	}
	payload, err := json.Marshal(BuildEvent(m.cfg, batch))
	if err != nil {
		return retry.Permanent(fmt.Errorf("encode kafka event: %w", err))
	}
	ictx, cancel := ctx, context.CancelFunc(func() {})
	if m.cfg.Timeout > 0 {
		ictx, cancel = context.WithTimeout(ctx, m.cfg.Timeout)
	}
	out, err := m.fn.Invoke(ictx, payload)
	cancel()
	if err != nil {
		return fmt.Errorf("invoke with %d records: %w", len(batch), err)
	}
	failed, err := failedOffsets(out, batch)
	if err != nil {
		// As in AWS, the whole batch is redelivered; the function answers the same way again.
		return retry.Permanent(fmt.Errorf("function response: %w", err))
	}

	// Commit, per partition, the last record before its first failure.
	var done []*kgo.Record
	lastDone := map[partitionID]*kgo.Record{}
	for _, r := range batch {
		id := partitionID{r.Topic, r.Partition}
		if f, ok := failed[id]; ok && r.Offset >= f {
			continue
		}
		done = append(done, r)
		lastDone[id] = r
	}
	commit := make([]*kgo.Record, 0, len(lastDone))
	for _, r := range lastDone {
		commit = append(commit, r)
	}
	if len(commit) > 0 {
		// Commit even when Run is being stopped: the function has done the work.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := m.client.CommitRecords(cctx, commit...)
		cancel()
		if err != nil {
			// The records are processed; they come again after a restart, harmlessly.
			m.cfg.Logger.Warn("commit offsets", "group", m.cfg.GroupID, "err", err)
		}
	}
	m.drop(done)
	if len(failed) > 0 {
		return fmt.Errorf("function reported %d failed partition(s): %v", len(failed), failed)
	}
	return nil
}

type partitionID struct {
	topic     string
	partition int32
}

func (p partitionID) String() string { return p.topic + "-" + strconv.Itoa(int(p.partition)) }

// nextBatch is the first BatchSize pending records that fit in one payload; the caller holds mu.
func (m *mapping) nextBatch() []*kgo.Record {
	var batch []*kgo.Record
	size := envelopeSize
	for _, p := range m.pending {
		size += recordSize(p.rec)
		if len(batch) == m.cfg.BatchSize || size > MaxPayload && len(batch) > 0 {
			break
		}
		batch = append(batch, p.rec)
	}
	return batch
}

// drop removes acknowledged records from pending.
func (m *mapping) drop(done []*kgo.Record) {
	if len(done) == 0 {
		return
	}
	acked := make(map[*kgo.Record]bool, len(done))
	for _, r := range done {
		acked[r] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pending = slices.DeleteFunc(m.pending, func(p polled) bool { return acked[p.rec] })
	m.inFlight = 0 // the batch's records left are no longer in flight: they wait for a retry
}

// failedOffsets reads the batchItemFailures of a response. Like AWS, it treats an identifier
// that names no record of the batch, or that it cannot read, as a failure of the whole batch. An
// identifier is {"partition":"<topic>-<p>","offset":N} or the flat "<topic>-<p>-<offset>".
func failedOffsets(out []byte, batch []*kgo.Record) (map[partitionID]int64, error) {
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier json.RawMessage `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if trimmed := strings.TrimSpace(string(out)); trimmed == "" || trimmed == "null" {
		return nil, nil
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		if json.Valid(out) && !strings.HasPrefix(strings.TrimSpace(string(out)), "{") {
			return nil, nil // a function that returns another value acknowledges the batch, as in AWS
		}
		return nil, fmt.Errorf("unreadable response %.200s: %w", out, err)
	}
	inBatch := map[string]partitionID{}
	for _, r := range batch {
		id := partitionID{r.Topic, r.Partition}
		inBatch[id.String()+"@"+strconv.FormatInt(r.Offset, 10)] = id
	}
	failed := map[partitionID]int64{}
	for _, f := range resp.BatchItemFailures {
		part, off, err := readIdentifier(f.ItemIdentifier)
		id, ok := inBatch[part+"@"+strconv.FormatInt(off, 10)]
		if err != nil || !ok {
			return nil, fmt.Errorf("batchItemFailures names %s, which is not a record of the batch", f.ItemIdentifier)
		}
		if prev, seen := failed[id]; !seen || off < prev {
			failed[id] = off
		}
	}
	return failed, nil
}

func readIdentifier(raw json.RawMessage) (partition string, offset int64, err error) {
	var flat string
	if json.Unmarshal(raw, &flat) == nil {
		i := strings.LastIndexByte(flat, '-')
		if i < 0 {
			return "", 0, fmt.Errorf("identifier %q has no offset", flat)
		}
		offset, err = strconv.ParseInt(flat[i+1:], 10, 64)
		return flat[:i], offset, err
	}
	var obj struct {
		Partition string      `json:"partition"`
		Offset    json.Number `json:"offset"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", 0, err
	}
	offset, err = obj.Offset.Int64()
	return obj.Partition, offset, err
}

// BuildEvent is the event AWS sends for these records: Records keyed "<topic>-<partition>",
// each partition's records in offset order, key and value base64, a null value absent,
// header values as signed bytes.
func BuildEvent(cfg Config, recs []*kgo.Record) events.KafkaEvent {
	ev := events.KafkaEvent{
		EventSource:      cfg.EventSource,
		EventSourceARN:   cfg.EventSourceARN,
		BootstrapServers: strings.Join(cfg.Brokers, ","),
		Records:          make(map[string][]events.KafkaRecord),
	}
	if ev.EventSource == "" {
		ev.EventSource = SourceSelfManaged
	}
	for _, r := range recs {
		k := partitionID{r.Topic, r.Partition}.String()
		ev.Records[k] = append(ev.Records[k], kafkaRecord(r))
	}
	return ev
}

func kafkaRecord(r *kgo.Record) events.KafkaRecord {
	kr := events.KafkaRecord{
		Topic:         r.Topic,
		Partition:     int64(r.Partition),
		Offset:        r.Offset,
		Timestamp:     events.MilliSecondsEpochTime{Time: r.Timestamp},
		TimestampType: "CREATE_TIME",
		Headers:       make([]map[string]events.JSONNumberBytes, 0, len(r.Headers)),
	}
	if r.Attrs.TimestampType() == 1 {
		kr.TimestampType = "LOG_APPEND_TIME"
	}
	if r.Key != nil {
		kr.Key = base64.StdEncoding.EncodeToString(r.Key)
	}
	if r.Value != nil {
		kr.Value = base64.StdEncoding.EncodeToString(r.Value)
	}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, map[string]events.JSONNumberBytes{h.Key: events.JSONNumberBytes(h.Value)})
	}
	return kr
}

// envelopeSize and recordSize estimate a payload's JSON size from above, to cut batches
// before Lambda's 6 MB limit.
const envelopeSize = 512

func recordSize(r *kgo.Record) int {
	n := 256 + len(r.Topic) + base64.StdEncoding.EncodedLen(len(r.Key)) + base64.StdEncoding.EncodedLen(len(r.Value))
	for _, h := range r.Headers {
		n += 16 + len(h.Key) + 5*len(h.Value) // "-128," per byte at worst
	}
	return n
}

func payloadSize(recs []polled) int {
	n := envelopeSize
	for _, p := range recs {
		n += recordSize(p.rec)
	}
	return n
}
