package lambdalocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// Queue is an SQS standard queue in memory, with the semantics an SQS event source mapping
// depends on: a received message stays hidden for the visibility timeout and comes back unless
// it is deleted with the receipt of its latest receive; a message received more often than the
// redrive policy's maxReceiveCount moves to the dead-letter queue; one older than the retention
// period is dropped. It does not survive the process (the stack's requests are re-made by the
// schedule's full build).
type Queue struct {
	Name       string
	visibility time.Duration
	retention  time.Duration
	maxReceive int
	dlq        *Queue
	now        func() time.Time

	mu      sync.Mutex
	msgs    []*queued     // in the order sent
	changed chan struct{} // closed and replaced when a message is sent
}

type queued struct {
	id, body, receipt string
	sent, visibleAt   time.Time
	receives          int
}

// NewQueue makes the template's queue; dlq is its RedrivePolicy's dead-letter queue (nil for none).
func NewQueue(q *samtemplate.Queue, dlq *Queue, now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	return &Queue{Name: q.Name, visibility: time.Duration(q.VisibilityTimeout) * time.Second,
		retention: time.Duration(q.MessageRetentionPeriod) * time.Second, maxReceive: q.MaxReceiveCount, dlq: dlq,
		now: now, changed: make(chan struct{})}
}

// SendMessage puts body on the queue (SQS SendMessage).
func (q *Queue) SendMessage(_ context.Context, body string) error {
	if len(body) > maxSQSMessage {
		return fmt.Errorf("send to %s: message of %d bytes is over SQS's %d", q.Name, len(body), maxSQSMessage)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	// Messages are kept in the order sent: drop the expired ones at the front, so a queue nobody
	// polls (a disabled mapping) stays bounded by its retention period, as in SQS.
	for len(q.msgs) > 0 && now.Sub(q.msgs[0].sent) >= q.retention {
		q.msgs = q.msgs[1:]
	}
	q.msgs = append(q.msgs, &queued{id: uuid.NewString(), body: body, sent: now, visibleAt: now})
	close(q.changed)
	q.changed = make(chan struct{})
	return nil
}

// adopt takes a message redriven from another queue. It keeps its id and its original enqueue
// time, as SQS does for standard queues: a dead letter expires by when it was first sent, not when
// it was moved.
func (q *Queue) adopt(m *queued) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, &queued{id: m.id, body: m.body, sent: m.sent, visibleAt: q.now()})
	close(q.changed)
	q.changed = make(chan struct{})
}

// maxSQSMessage is SQS's largest message (SQS developer guide, quotas: 256 KiB).
const maxSQSMessage = 256 << 10

// Receive takes up to max visible messages and hides them for the visibility timeout (SQS
// ReceiveMessage). It returns when it has some, when ctx ends, or at until with none.
func (q *Queue) Receive(ctx context.Context, max int, until time.Time) []events.SQSMessage {
	for {
		q.mu.Lock()
		got, next := q.take(max)
		changed := q.changed
		q.mu.Unlock()
		if len(got) > 0 {
			return got
		}
		wait := time.Until(until)
		if !next.IsZero() && next.Sub(q.now()) < wait {
			wait = next.Sub(q.now())
		}
		if wait <= 0 && !q.now().Before(until) {
			return nil
		}
		t := time.NewTimer(max0(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

func max0(d time.Duration) time.Duration { return max(d, time.Millisecond) }

// take hides up to max visible messages; next is when the next hidden one shows again. Called
// with q.mu held.
func (q *Queue) take(max int) (got []events.SQSMessage, next time.Time) {
	now := q.now()
	kept := q.msgs[:0]
	for _, m := range q.msgs {
		switch {
		case now.Sub(m.sent) >= q.retention:
			continue // expired
		case len(got) >= max || m.visibleAt.After(now):
			if m.visibleAt.After(now) && (next.IsZero() || m.visibleAt.Before(next)) {
				next = m.visibleAt
			}
		case q.dlq != nil && q.maxReceive > 0 && m.receives >= q.maxReceive:
			q.dlq.adopt(m) // moved on the receive after the last allowed
			continue
		default:
			m.receives++
			m.receipt = uuid.NewString()
			m.visibleAt = now.Add(q.visibility)
			got = append(got, events.SQSMessage{MessageId: m.id, ReceiptHandle: m.receipt, Body: m.body,
				EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:000000000000:" + q.Name, AWSRegion: "us-east-1",
				Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives),
					"SentTimestamp": strconv.FormatInt(m.sent.UnixMilli(), 10)}})
		}
		kept = append(kept, m)
	}
	q.msgs = kept
	return got, next
}

// Delete removes the message a receipt handle names, if that is still its latest receive and it
// has not shown again since (SQS DeleteMessage; a stale receipt deletes nothing here).
func (q *Queue) Delete(receipt string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, m := range q.msgs {
		if m.receipt == receipt && m.visibleAt.After(q.now()) {
			q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
			return true
		}
	}
	return false
}

// Len is how many messages the queue holds, visible or not.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// Queues makes every queue of the template, each with its dead-letter queue, by URL (what !Ref
// of a queue gives a function's environment).
func Queues(tpl *samtemplate.Template) map[string]*Queue {
	byID := map[string]*Queue{}
	building := map[string]bool{}
	var build func(id string) *Queue
	build = func(id string) *Queue {
		if q, ok := byID[id]; ok {
			return q
		}
		building[id] = true
		def := tpl.Queues[id]
		var dlq *Queue
		// A redrive cycle (A to B to A) is cut where it closes: each message moves once, never
		// round for ever, and building it cannot recurse without end.
		if d := def.DeadLetterQueue; d != "" && tpl.Queues[d] != nil && d != id && !building[d] {
			dlq = build(d)
		}
		byID[id] = NewQueue(def, dlq, nil)
		return byID[id]
	}
	out := map[string]*Queue{}
	for id, def := range tpl.Queues {
		out[def.URL] = build(id)
	}
	return out
}

// defaultSQSPollers is how many batches an SQS mapping without ScalingConfig processes at once
// when messages are few (Lambda developer guide, SQS scaling: five).
const defaultSQSPollers = 5

// SQSMapping is an SQS event source mapping: the template's event on its queue, into fn.
type SQSMapping struct {
	Event    samtemplate.SQSEvent
	Queue    *Queue
	Function *Function
	// OnResult, when set, is told each invocation's result.
	OnResult func(out []byte, err error)
	Logger   *slog.Logger
}

// RunSQS polls the mapping's queue until ctx ends, as Lambda's pollers do: at most
// ScalingConfig.MaximumConcurrency batches at once, each gathered until it holds BatchSize
// messages, 6 MB, or MaximumBatchingWindowInSeconds have passed since its first. A batch the
// function takes is deleted (all but its batchItemFailures with ReportBatchItemFailures); a
// failed one is left to show again after the visibility timeout; a throttled invocation is tried
// again while the batch is still hidden.
func RunSQS(ctx context.Context, m SQSMapping) error {
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	pollers := m.Event.MaximumConcurrency
	if pollers == 0 {
		pollers = defaultSQSPollers
	}
	var wg sync.WaitGroup
	for range pollers {
		wg.Go(func() {
			for ctx.Err() == nil {
				m.pollOnce(ctx)
			}
		})
	}
	wg.Wait()
	return nil
}

// maxSyncPayload is Lambda's synchronous invocation payload limit, which cuts a batch.
const maxSyncPayload = 6 << 20

// pollOnce gathers one batch and invokes the function with it.
func (m SQSMapping) pollOnce(ctx context.Context) {
	batch := m.Queue.Receive(ctx, m.Event.BatchSize, time.Now().Add(20*time.Second)) // long polling
	if len(batch) == 0 {
		return
	}
	hiddenUntil := time.Now().Add(m.Queue.visibility)
	deadline, size := time.Now().Add(time.Duration(m.Event.MaxBatchingWindow)*time.Second), batchBytes(batch)
	for len(batch) < m.Event.BatchSize && size < maxSyncPayload && time.Now().Before(deadline) {
		more := m.Queue.Receive(ctx, m.Event.BatchSize-len(batch), deadline)
		batch, size = append(batch, more...), size+batchBytes(more)
	}
	payload, _ := json.Marshal(events.SQSEvent{Records: batch})
	out, err := m.invoke(ctx, payload, hiddenUntil)
	if m.OnResult != nil && !errors.Is(err, ErrThrottled) && ctx.Err() == nil {
		m.OnResult(out, err)
	}
	if err != nil {
		m.Logger.Warn("SQS batch failed; its messages show again after the visibility timeout", "function", m.Function.Name,
			"queue", m.Queue.Name, "messages", len(batch), "err", err)
		return
	}
	failed, err := m.failedItems(out, batch)
	if err != nil {
		m.Logger.Warn("SQS batch response unreadable; the whole batch shows again", "function", m.Function.Name, "err", err)
		return
	}
	for _, msg := range batch {
		if !failed[msg.MessageId] {
			m.Queue.Delete(msg.ReceiptHandle)
		}
	}
}

// invoke invokes the function, trying again while it is throttled and the batch is still hidden
// (past that, its messages are visible again and another poller takes them).
func (m SQSMapping) invoke(ctx context.Context, payload []byte, hiddenUntil time.Time) (out []byte, err error) {
	err = retry.Do(ctx, retry.Policy{Backoff: throttleBackoff, Again: func(_ int, wait time.Duration, err error) bool {
		return errors.Is(err, ErrThrottled) && !time.Now().Add(wait).After(hiddenUntil)
	}}, func(ctx context.Context) (err error) {
		out, err = m.Function.Invoke(ctx, payload)
		return err
	})
	return out, err
}

// failedItems reads a partial batch response; without ReportBatchItemFailures Lambda ignores the
// response and the batch succeeded whole. An item failure naming no message of the batch fails
// the whole batch, as in Lambda.
func (m SQSMapping) failedItems(out []byte, batch []events.SQSMessage) (map[string]bool, error) {
	failed := map[string]bool{}
	if !m.Event.ReportItemFailure || len(out) == 0 || string(out) == "null" {
		return failed, nil
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, err
	}
	for _, f := range resp.BatchItemFailures {
		if !slices.ContainsFunc(batch, func(m events.SQSMessage) bool { return m.MessageId == f.ItemIdentifier }) {
			return nil, fmt.Errorf("batch item failure %q names no message of the batch", f.ItemIdentifier)
		}
		failed[f.ItemIdentifier] = true
	}
	return failed, nil
}

func batchBytes(msgs []events.SQSMessage) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Body) + 512 // the record's other fields
	}
	return n
}
