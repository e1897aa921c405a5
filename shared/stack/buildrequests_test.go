package stack

import (
	"context"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// oneRowWarehouse loads every object as one row.
type oneRowWarehouse struct{}

func (oneRowWarehouse) Loaded(context.Context, string, string) (bool, error) { return false, nil }
func (oneRowWarehouse) Load(ctx context.Context, obj warehouse.Object) (warehouse.Result, error) {
	_, err := obj.Fetch(ctx, io.Discard)
	return warehouse.Result{Rows: 1}, err
}

type anyObject struct{}

func (anyObject) ReadObject(context.Context, string, string, io.Writer) (string, error) {
	return "etag", nil
}

// A load that commits reaches the dbt-runner the way template.yaml wires it: the loader (built by
// its Lambda's constructor) sends to the queue its BUILD_QUEUE_URL names, and the queue's SQS
// event source invokes the dbt-runner with a batch that selects what follows the loaded table.
func TestLoadCommittedRequestsABuildThroughTheTemplatesQueue(t *testing.T) {
	s := testStack(t, Config{})
	ld, err := s.buildLoader(oneRowWarehouse{}, anyObject{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan dbtrun.Request, 1)
	dbtFn := lambdalocal.NewFunction(dbtFunction, func(ctx context.Context, ev events.SQSEvent) error {
		req, bad := dbtrun.RequestFromSQS(ev)
		if len(bad) > 0 {
			t.Errorf("the loader's request is unreadable to the dbt-runner: %v", bad)
		}
		got <- req
		return nil
	}, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	if err := s.runQueues(runCtx, map[string]*lambdalocal.Function{dbtFunction: dbtFn}, func(name string, fn func() error) {
		go func() { fn(); close(done) }()
	}); err != nil {
		t.Fatal(err)
	}
	key := "bronze/accounts/dt=2026-11-25/fin.public.accounts-0-10-19-0a1b2c3d.parquet"
	var rec events.S3EventRecord
	rec.EventName, rec.S3.Bucket.Name = "ObjectCreated:Put", "lake"
	rec.S3.Object.Key, rec.S3.Object.URLDecodedKey = url.QueryEscape(key), key
	if err := ld.Handle(ctx, events.S3Event{Records: []events.S3EventRecord{rec}}); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		if req.Select != "source:raw.accounts+" {
			t.Errorf("build of %q, want source:raw.accounts+", req.Select)
		}
	case <-ctx.Done():
		t.Fatal("the committed load never reached the dbt-runner")
	}
	stop()
	<-done
	if q := s.queues[s.tpl.Queues["BuildRequests"].URL]; q.Len() != 0 {
		t.Errorf("%d requests left on the queue after the build took them", q.Len())
	}
}

// The dbt-runner reads, after each build, the queue template.yaml gives it (BUILD_QUEUE_URL, the
// BuildRequests queue its event source polls): what it takes is hidden from the pollers, and
// deleted once built.
func TestDbtRunnerReadsTheTemplatesBuildQueue(t *testing.T) {
	s := testStack(t, Config{})
	r := s.waitingBuildRequests(FunctionEnv(s.tpl, dbtFunction, settings.DBT, nil, nil))
	if r == nil {
		t.Fatal("the dbt-runner's environment names no build queue of the template")
	}
	q := s.queues[s.tpl.Queues["BuildRequests"].URL]
	ctx := context.Background()
	for _, body := range []string{`{"tables":["accounts"]}`, `{"tables":["transactions"]}`} {
		if err := q.SendMessage(ctx, body); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := r.ReceiveWaiting(ctx)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("read %d requests (%v), want the 2 waiting", len(msgs), err)
	}
	if again, _ := r.ReceiveWaiting(ctx); len(again) != 0 {
		t.Errorf("%d requests read twice: taken requests must stay hidden", len(again))
	}
	if err := r.DeleteMessages(ctx, msgs); err != nil || q.Len() != 0 {
		t.Errorf("after deleting them, %d requests left on the queue (%v)", q.Len(), err)
	}
}
