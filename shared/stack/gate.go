package stack

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
)

// landedGate sits between the capture and Kafka. It passes records on at once but holds each
// acknowledgement back until the consumer group of every mapping that lands the record's topic
// has committed past the record, that is until the record is durably in S3. So the capture
// confirms a WAL position to Postgres only once everything before it is in the lake, and a broker
// that loses its log (the embedded one keeps it in memory) loses nothing: after a restart the
// capture streams again from the slot. Each topic has its own mapping and group, as in Lambda:
// another group's offsets on a topic (an old all-topics group, a neighbour's) never release it.
type landedGate struct {
	next   capture.Producer
	admin  *kadm.Client
	groups map[string][]string // topic -> the consumer groups that land it

	// retain keeps landed records this long before trim deletes them (0: delete once landed).
	retain time.Duration
	// retainBytes bounds what each partition keeps, as Kafka's retention.bytes: beyond it trim
	// deletes landed records however young (0: no bound). Records not yet landed always stay.
	retainBytes int64

	mu      sync.Mutex
	waiting map[topicPartition][]heldAck
	sizes   map[topicPartition][]recordSize // with retainBytes: the records the log still holds
	log     *slog.Logger
}

type topicPartition struct {
	topic     string
	partition int32
}

// recordSize is the size of a record the gate passed on: its key, value and headers, the bytes a
// broker's log holds of it but for the batch's framing.
type recordSize struct {
	offset, bytes int64
}

func sizeOf(r *kgo.Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

type heldAck struct {
	offset  int64
	rec     *kgo.Record
	promise func(*kgo.Record, error)
}

// newLandedGate gates the topics of groups (topic -> the groups of the mappings that land it).
func newLandedGate(next capture.Producer, client *kgo.Client, groups map[string][]string, log *slog.Logger) *landedGate {
	return &landedGate{next: next, admin: kadm.NewClient(client), groups: groups,
		waiting: map[topicPartition][]heldAck{}, sizes: map[topicPartition][]recordSize{}, log: log}
}

// Produce implements capture.Producer.
func (g *landedGate) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	g.next.Produce(ctx, r, func(rec *kgo.Record, err error) {
		if err != nil || len(g.groups[rec.Topic]) == 0 {
			promise(rec, err) // failures, and topics nobody lands (heartbeats), answer at once
			return
		}
		tp := topicPartition{rec.Topic, rec.Partition}
		g.mu.Lock()
		g.waiting[tp] = append(g.waiting[tp], heldAck{rec.Offset, rec, promise})
		if g.retainBytes > 0 {
			g.sizes[tp] = append(g.sizes[tp], recordSize{rec.Offset, sizeOf(rec)})
		}
		g.mu.Unlock()
	})
}

// run releases held acknowledgements as the groups' committed offsets pass them. With trim, it
// also deletes, every trimEvery, the records the groups have landed and that are older than
// g.retain, so an in-memory broker does not grow without end.
func (g *landedGate) run(ctx context.Context, trim bool) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	lastTrim := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if trim && time.Since(lastTrim) > trimEvery {
			lastTrim = time.Now()
			g.trim(ctx, lastTrim)
		}
		g.release(ctx)
	}
}

// trimEvery is how often the gate trims the embedded broker's log.
const trimEvery = 10 * time.Second

// DefaultKafkaRetentionBytes is fin up's bound on the landed records each partition of the
// embedded broker keeps (FIN_KAFKA_RETENTION_BYTES): 1 MiB, about 5 s of transactions at 200
// operations a second. Its log frees whole 1 MiB segments, so a partition holds 4-6 MB of heap;
// with 8 MiB it held 12 MB, and below the rate at which the bound binds (about 130 operations a
// second at 8 MiB, under 20 at 1 MiB) FIN_KAFKA_RETENTION's minute held the log instead, so its
// memory followed the rate: `fin up`'s broker log went from 10 MB at minute 5 to 43 MB at
// minute 15 as the rate rose from 30 to 83 operations a second.
const DefaultKafkaRetentionBytes = 1 << 20

// release answers the held acknowledgements that every group of their topic has committed past.
func (g *landedGate) release(ctx context.Context) {
	g.mu.Lock()
	need := map[string]bool{}
	for tp := range g.waiting {
		for _, group := range g.groups[tp.topic] {
			need[group] = true
		}
	}
	g.mu.Unlock()
	if len(need) == 0 {
		return
	}
	offsets := map[string]kadm.OffsetResponses{}
	for group := range need {
		o, err := g.admin.FetchOffsets(ctx, group)
		if err != nil {
			if ctx.Err() == nil {
				g.log.Debug("landed gate: fetch committed offsets", "group", group, "err", err)
			}
			continue
		}
		offsets[group] = o
	}
	var release []heldAck
	g.mu.Lock()
	for tp, held := range g.waiting {
		committed, ok := g.landedUpTo(offsets, tp)
		if !ok {
			continue
		}
		n := 0
		for n < len(held) && held[n].offset < committed {
			n++
		}
		release = append(release, held[:n]...)
		// The queue goes on from held[n:] in the same array: clear the answered entries, or
		// their records (values and all) stay reachable until an append reallocates it.
		clear(held[:n])
		if n == len(held) {
			delete(g.waiting, tp)
		} else {
			g.waiting[tp] = held[n:]
		}
	}
	g.mu.Unlock()
	for _, h := range release {
		h.promise(h.rec, nil)
	}
}

// landedUpTo is the offset below which every group of the partition's topic has committed (the
// least of their next offsets to read); false when one of them has committed nothing there yet.
func (g *landedGate) landedUpTo(offsets map[string]kadm.OffsetResponses, tp topicPartition) (int64, bool) {
	least, found := int64(0), false
	for _, group := range g.groups[tp.topic] {
		o, ok := offsets[group].Lookup(tp.topic, tp.partition)
		if !ok || o.Err != nil {
			return 0, false
		}
		if !found || o.At < least {
			least, found = o.At, true
		}
	}
	return least, found
}

// trim deletes the records every group of their topic has committed past (they are in the lake)
// and, with g.retain, whose timestamp is older than now-g.retain, as Kafka's retention.ms would
// delete them: `fin kafka-tail --from-beginning` still finds the last minutes, and the log holds at
// most retain's worth of records beyond what the landing has yet to take. With g.retainBytes, a
// partition keeps no more than that many bytes of landed records, as retention.bytes would, so a
// faster rate or a backlog caught up does not hold more memory than a quiet minute.
func (g *landedGate) trim(ctx context.Context, now time.Time) {
	landed, ok := g.landedOffsets(ctx)
	if !ok || len(landed) == 0 {
		return
	}
	del := kadm.Offsets{}
	landed.Each(func(o kadm.Offset) { del.Add(o) })
	if g.retain > 0 {
		if err := g.keepRetained(ctx, del, now.Add(-g.retain)); err != nil {
			if ctx.Err() == nil {
				g.log.Debug("trim landed records: list offsets by time", "err", err)
			}
			return
		}
		g.boundBytes(del, landed)
	}
	if _, err := g.admin.DeleteRecords(ctx, del); err != nil {
		if ctx.Err() == nil {
			g.log.Debug("trim landed records", "err", err)
		}
		return
	}
	g.forgetSizes(del)
}

// landedOffsets are, for each partition of a landed topic, the offset below which every group of
// the topic has committed; false when a group's offsets cannot be read.
func (g *landedGate) landedOffsets(ctx context.Context) (kadm.Offsets, bool) {
	offsets := map[string]kadm.OffsetResponses{}
	for _, groups := range g.groups {
		for _, group := range groups {
			if _, done := offsets[group]; done {
				continue
			}
			o, err := g.admin.FetchOffsets(ctx, group)
			if err != nil {
				return nil, false
			}
			offsets[group] = o
		}
	}
	landed := kadm.Offsets{}
	for _, o := range offsets {
		o.Each(func(r kadm.OffsetResponse) {
			if r.Err != nil || len(g.groups[r.Topic]) == 0 {
				return
			}
			if at, ok := g.landedUpTo(offsets, topicPartition{r.Topic, r.Partition}); ok && at > 0 {
				landed.AddOffset(r.Topic, r.Partition, at, -1)
			}
		})
	}
	return landed, true
}

// boundBytes raises each offset of del, never past what is landed, to the first record from which
// the partition holds at most g.retainBytes.
func (g *landedGate) boundBytes(del, landed kadm.Offsets) {
	if g.retainBytes <= 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for topic, partitions := range del {
		for p, o := range partitions {
			keepFrom, over := bytesFrom(g.sizes[topicPartition{topic, p}], g.retainBytes)
			if !over {
				continue
			}
			l, _ := landed.Lookup(topic, p)
			if keepFrom = min(keepFrom, l.At); keepFrom > o.At {
				o.At = keepFrom
				partitions[p] = o
			}
		}
	}
}

// bytesFrom is the first offset from which sizes (in offset order) hold at most bound bytes, and
// whether they hold more than that in all.
func bytesFrom(sizes []recordSize, bound int64) (int64, bool) {
	held := int64(0)
	for i := len(sizes) - 1; i >= 0; i-- {
		if held += sizes[i].bytes; held > bound {
			return sizes[i].offset + 1, true
		}
	}
	return 0, false
}

// forgetSizes drops the sizes of the records del deleted.
func (g *landedGate) forgetSizes(del kadm.Offsets) {
	g.mu.Lock()
	defer g.mu.Unlock()
	del.Each(func(o kadm.Offset) {
		tp := topicPartition{o.Topic, o.Partition}
		sizes := g.sizes[tp]
		n := 0
		for n < len(sizes) && sizes[n].offset < o.At {
			n++
		}
		if n == len(sizes) {
			delete(g.sizes, tp)
		} else {
			g.sizes[tp] = sizes[n:]
		}
	})
}

// keepRetained lowers each offset of del to the first record stamped at or after since, so what
// is younger stays.
func (g *landedGate) keepRetained(ctx context.Context, del kadm.Offsets, since time.Time) error {
	listed, err := g.admin.ListOffsetsAfterMilli(ctx, since.UnixMilli(), del.TopicsSet().Topics()...)
	if err != nil {
		return err
	}
	if err := listed.Error(); err != nil {
		return err
	}
	for topic, partitions := range del {
		for p, o := range partitions {
			if l, ok := listed.Lookup(topic, p); ok && l.Offset < o.At {
				o.At = l.Offset // not AddOffset: it only ever raises an offset
				partitions[p] = o
			}
		}
	}
	return nil
}
