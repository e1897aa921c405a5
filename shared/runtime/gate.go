package runtime

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
// acknowledgement back until the landing function's consumer group has committed past the
// record, that is until the record is durably in S3. So the capture confirms a WAL position to
// Postgres only once everything before it is in the lake, and a broker that loses its log (the
// embedded one keeps it in memory) loses nothing: after a restart the capture streams again
// from the slot.
type landedGate struct {
	next   capture.Producer
	admin  *kadm.Client
	group  string
	topics map[string]bool

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

func newLandedGate(next capture.Producer, client *kgo.Client, group string, topics []string, log *slog.Logger) *landedGate {
	g := &landedGate{next: next, admin: kadm.NewClient(client), group: group, topics: map[string]bool{},
		waiting: map[topicPartition][]heldAck{}, log: log}
	for _, t := range topics {
		g.topics[t] = true
	}
	return g
}

// Produce implements capture.Producer.
func (g *landedGate) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	g.next.Produce(ctx, r, func(rec *kgo.Record, err error) {
		if err != nil || !g.topics[rec.Topic] {
			promise(rec, err) // failures, and topics nobody lands (heartbeats), answer at once
			return
		}
		tp := topicPartition{rec.Topic, rec.Partition}
		g.mu.Lock()
		g.waiting[tp] = append(g.waiting[tp], heldAck{rec.Offset, rec, promise})
		g.mu.Unlock()
	})
}

// run releases held acknowledgements as the group's committed offsets pass them. With trim, it
// also deletes the records the group has landed, now and then, so an in-memory broker does not
// grow without end.
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
		if trim && time.Since(lastTrim) > 30*time.Second {
			lastTrim = time.Now()
			g.trim(ctx)
		}
		g.mu.Lock()
		pending := len(g.waiting) > 0
		g.mu.Unlock()
		if !pending {
			continue
		}
		offsets, err := g.admin.FetchOffsets(ctx, g.group)
		if err != nil {
			if ctx.Err() == nil {
				g.log.Debug("landed gate: fetch committed offsets", "group", g.group, "err", err)
			}
			continue
		}
		var release []heldAck
		g.mu.Lock()
		for tp, held := range g.waiting {
			o, ok := offsets.Lookup(tp.topic, tp.partition)
			if !ok || o.Err != nil {
				continue
			}
			committed := o.At // the next offset the group will read
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
}

// trim deletes the records below the group's committed offsets: they are in the lake.
func (g *landedGate) trim(ctx context.Context) {
	offsets, err := g.admin.FetchOffsets(ctx, g.group)
	if err != nil {
		return
	}
	del := kadm.Offsets{}
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && g.topics[o.Topic] && o.At > 0 {
			del.AddOffset(o.Topic, o.Partition, o.At, -1)
		}
	})
	if _, err := g.admin.DeleteRecords(ctx, del); err != nil && ctx.Err() == nil {
		g.log.Debug("trim landed records", "err", err)
	}
}
