package lambdalocal

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

func TestInvokeRoundTripsJSON(t *testing.T) {
	var gotID string
	fn := NewFunction("loader", func(ctx context.Context, ev events.S3Event) (int, error) {
		lc, _ := lambdacontext.FromContext(ctx)
		gotID = lc.AwsRequestID
		if _, ok := ctx.Deadline(); !ok {
			return 0, errors.New("no deadline")
		}
		if len(ev.Records) == 0 {
			return 0, errors.New("empty event")
		}
		return len(ev.Records), nil
	}, time.Second)
	out, err := fn.Call(context.Background(), events.S3Event{Records: []events.S3EventRecord{{EventName: "ObjectCreated:Put"}}})
	if err != nil || string(out) != "1" || gotID == "" {
		t.Fatalf("Invoke = %s, %v (request id %q)", out, err, gotID)
	}
	if _, err := fn.Call(context.Background(), events.S3Event{}); err == nil || !errors.Is(err, err) {
		t.Fatal("a handler error did not fail the invocation")
	}
}

func TestScheduledEvent(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(ScheduledEvent(samtemplate.ScheduleEvent{Expression: "rate(1 minute)"}, "dbt", at), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || !ev.Time.Equal(at) {
		t.Fatalf("scheduled event %+v", ev)
	}
	if got := ScheduledEvent(samtemplate.ScheduleEvent{Input: `{"select":"marts"}`}, "dbt", at); string(got) != `{"select":"marts"}` {
		t.Fatalf("input not delivered as is: %s", got)
	}
}
