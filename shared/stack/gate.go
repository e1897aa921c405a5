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

	mu      sync.Mutex
	waiting map[topicPartition][]heldAck
	log     *slog.Logger
}

type topicPartition struct {
	topic     string
	partition int32
}

type heldAck struct {
	offset  int64
	rec     *kgo.Record
	promise func(*kgo.Record, error)
}

// newLandedGate gates the topics of groups (topic -> the groups of the mappings that land it).
func newLandedGate(next capture.Producer, client *kgo.Client, groups map[string][]string, log *slog.Logger) *landedGate {
	return &landedGate{next: next, admin: kadm.NewClient(client), groups: groups,
		waiting: map[topicPartition][]heldAck{}, log: log}
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
// most retain's worth of records beyond what the landing has yet to take.
func (g *landedGate) trim(ctx context.Context, now time.Time) {
	offsets := map[string]kadm.OffsetResponses{}
	for _, groups := range g.groups {
		for _, group := range groups {
			if _, done := offsets[group]; done {
				continue
			}
			o, err := g.admin.FetchOffsets(ctx, group)
			if err != nil {
				return
			}
			offsets[group] = o
		}
	}
	del := kadm.Offsets{}
	for _, o := range offsets {
		o.Each(func(r kadm.OffsetResponse) {
			if r.Err != nil || len(g.groups[r.Topic]) == 0 {
				return
			}
			if at, ok := g.landedUpTo(offsets, topicPartition{r.Topic, r.Partition}); ok && at > 0 {
				del.AddOffset(r.Topic, r.Partition, at, -1)
			}
		})
	}
	if g.retain > 0 && len(del) > 0 {
		if err := g.keepRetained(ctx, del, now.Add(-g.retain)); err != nil {
			if ctx.Err() == nil {
				g.log.Debug("trim landed records: list offsets by time", "err", err)
			}
			return
		}
	}
	if _, err := g.admin.DeleteRecords(ctx, del); err != nil && ctx.Err() == nil {
		g.log.Debug("trim landed records", "err", err)
	}
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
