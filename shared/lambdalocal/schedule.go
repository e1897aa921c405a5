package lambdalocal

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
	"github.com/fin-orchestrator/fin-orchestrator/shared/schedule"
)

// ScheduledEvent is the payload a schedule delivers: its Input when the template sets one (as
// EventBridge does), otherwise EventBridge's "Scheduled Event".
func ScheduledEvent(ev samtemplate.ScheduleEvent, ruleName string, at time.Time) []byte {
	if ev.Input != "" {
		return []byte(ev.Input)
	}
	b, _ := json.Marshal(events.EventBridgeEvent{
		Version: "0", ID: uuid.NewString(), DetailType: "Scheduled Event", Source: "aws.events",
		AccountID: "000000000000", Time: at.UTC(), Region: "us-east-1",
		Resources: []string{"arn:aws:events:us-east-1:000000000000:rule/" + ruleName},
		Detail:    json.RawMessage(`{}`),
	})
	return b
}

// Clock is the time schedules run by: the real one in the stack, a fast one in tests.
type Clock struct {
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
var RealClock = Clock{Now: time.Now, After: time.After}

// FastClock starts at start and fires every wait at once, moving its time on by the wait: a day
// of schedules runs in moments, at dates that do not depend on today's.
func FastClock(start time.Time) Clock {
	var mu sync.Mutex
	now := start
	fired := make(chan time.Time)
	close(fired)
	return Clock{
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		After: func(d time.Duration) <-chan time.Time {
			mu.Lock()
			now = now.Add(d)
			mu.Unlock()
			return fired
		},
	}
}

// RunSchedules runs every schedule the template gives function id, invoking fn as EventBridge
// would, until ctx ends; expression, when set, replaces the template's. Each schedule runs as
// run starts it (a goroutine, or a supervised part).
func RunSchedules(ctx context.Context, tpl *samtemplate.Template, id string, fn *Function, expression string,
	onResult func([]byte, error), clock Clock, run func(name string, fn func() error)) {
	for _, ev := range tpl.Functions[id].Schedules {
		if expression != "" {
			ev.Expression = expression
		}
		run(id+" schedule "+ev.Name, func() error { return runSchedule(ctx, ev, fn, onResult, clock) })
	}
}

// runSchedule invokes fn each time the schedule event fires, until ctx ends. A failed invocation
// is logged and reported to onResult, and the schedule goes on, as with EventBridge.
func runSchedule(ctx context.Context, ev samtemplate.ScheduleEvent, fn *Function, onResult func(out []byte, err error), clock Clock) error {
	s, err := schedule.Parse(ev.Expression)
	if err != nil {
		return fmt.Errorf("schedule %s of %s: %w", ev.Name, fn.Name, err)
	}
	next := s.Next(clock.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-clock.After(next.Sub(clock.Now())):
		}
		out, err := InvokeAsync(ctx, fn, ScheduledEvent(ev, fn.Name+"-"+ev.Name, next))
		if err != nil && ctx.Err() == nil {
			slog.Error("scheduled invocation failed", "function", fn.Name, "schedule", ev.Expression, "err", err)
		}
		if onResult != nil {
			onResult(out, err)
		}
		next = s.Next(clock.Now())
	}
}
