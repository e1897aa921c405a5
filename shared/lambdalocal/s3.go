package lambdalocal

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// MatchS3 keeps the records of an S3 notification that one of a function's S3 events matches by
// key prefix and suffix, as the bucket's notification configuration would; ok is false when none
// does (S3 sends nothing then).
func MatchS3(rules []samtemplate.S3Event, ev events.S3Event) (kept events.S3Event, ok bool) {
	for _, r := range ev.Records {
		for _, rule := range rules {
			key := r.S3.Object.URLDecodedKey
			if key == "" {
				key = r.S3.Object.Key
			}
			if strings.HasPrefix(key, rule.Prefix) && strings.HasSuffix(key, rule.Suffix) {
				kept.Records = append(kept.Records, r)
				break
			}
		}
	}
	return kept, len(kept.Records) > 0
}

// asyncBackoff is the wait before the first retry of a failed asynchronous invocation; it doubles:
// Lambda waits one minute before the first retry and two before the second ("How Lambda handles
// errors and retries with asynchronous invocation", Lambda developer guide).
var asyncBackoff = time.Minute

// throttleBackoff bounds the wait between two tries of a throttled invocation by an event source
// mapping, which AWS documents only as a gradual backoff.
var throttleBackoff = retry.Backoff{First: 100 * time.Millisecond, Max: 2 * time.Second}

// asyncThrottleBackoff is how Lambda's queue for asynchronous invocations retries a throttled
// one: from 1 s after the first attempt, doubling to at most 5 minutes ("Asynchronous invocation",
// Lambda developer guide). A faster local retry would run schedules sooner than AWS does.
var asyncThrottleBackoff = retry.Backoff{First: time.Second, Max: 5 * time.Minute}

// InvokeAsync invokes fn as Lambda's queue for asynchronous invocations does: a throttled
// invocation (ErrThrottled) waits and is tried again, without counting as one of the event's
// retries (Lambda keeps a throttled event up to six hours), until ctx ends.
func InvokeAsync(ctx context.Context, fn *Function, payload []byte) (out []byte, err error) {
	err = retry.Do(ctx, retry.Policy{Backoff: asyncThrottleBackoff, Again: func(_ int, _ time.Duration, err error) bool {
		return errors.Is(err, ErrThrottled)
	}}, func(ctx context.Context) (err error) {
		out, err = fn.Invoke(ctx, payload)
		return err
	})
	return out, err
}

// DeliverAsync invokes fn with each event from queue as an asynchronous invocation: a failed one
// is retried twice, with backoff (Lambda's asynchronous retries), then handed to failed (an
// on-failure destination). It returns when ctx ends.
func DeliverAsync[E any](ctx context.Context, fn *Function, queue <-chan E, failed func(ev E, err error), log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-queue:
			payload, _ := json.Marshal(ev)
			// Lambda retries a failed event whatever the error, permanent or not: it cannot tell.
			err := retry.Do(ctx, retry.Policy{Attempts: 3, Backoff: retry.Backoff{First: asyncBackoff},
				Again: func(attempt int, _ time.Duration, err error) bool {
					log.Warn("asynchronous invocation failed; retrying", "function", fn.Name, "attempt", attempt, "err", err)
					return true
				}}, func(ctx context.Context) error {
				_, err := InvokeAsync(ctx, fn, payload)
				return err
			})
			if err != nil && ctx.Err() == nil {
				failed(ev, err)
			}
		}
	}
}

// DeliverAsyncLanes is DeliverAsync with a queue of its own per lane (lane(ev) names it): the
// events of one lane are invoked one at a time, in the order they came, and the lanes run beside
// each other. Lambda runs the asynchronous invocations of a function without reserved concurrency
// beside each other, in no order at all; one queue for every event would make each wait for all
// the events before it, whatever they are (a warehouse loader's small object behind a snapshot's
// large ones), which AWS never does. A lane's queue holds as many events as queue does; when it
// is full, the next event of that lane waits, and the events behind it with it.
func DeliverAsyncLanes[E any](ctx context.Context, fn *Function, queue <-chan E, lane func(E) string, failed func(ev E, err error), log *slog.Logger) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	lanes := map[string]chan E{}
	for {
		var ev E
		select {
		case <-ctx.Done():
			return nil
		case ev = <-queue:
		}
		name := lane(ev)
		q, ok := lanes[name]
		if !ok {
			q = make(chan E, max(cap(queue), 1))
			lanes[name] = q
			wg.Add(1)
			go func() {
				defer wg.Done()
				DeliverAsync(ctx, fn, q, failed, log)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case q <- ev:
		}
	}
}
