package dbtrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/buildrequest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/emf"
	"github.com/fin-orchestrator/fin-orchestrator/shared/strictjson"
)

// Handler is the dbt-runner function: on a scheduled EventBridge event, or a batch of build
// requests from SQS (loads that committed), it runs dbt build and returns the Summary, failing
// the invocation when a model or test failed. A scheduled event's detail may carry a Request
// ({"select": "marts", "full_refresh": false}); a schedule whose target Input is
// {"detail": {"select": "marts"}} delivers exactly that. An SQS batch builds what is downstream of
// the RAW tables its requests name (RequestFromSQS), then builds at once the requests that waited
// on the queue meanwhile (buildWaiting, with Config.Requests).
func Handler(cfg Config, log *slog.Logger) func(context.Context, json.RawMessage) (Summary, error) {
	return func(ctx context.Context, payload json.RawMessage) (Summary, error) {
		started := time.Now()
		ev, req, err := requestFromPayload(payload, log)
		if err != nil {
			log.Error("dbt build not started", "event_id", ev.ID, "error", err)
			return Summary{}, err
		}
		if !strings.HasPrefix(ev.ID, sqsEventPrefix) {
			// A schedule's build is left alone: the requests that waited are the pollers'.
			return build(ctx, cfg, log, ev.ID, req, 1)
		}
		joined, req := joinWaiting(ctx, cfg, log, req)
		sum, err := build(ctx, cfg, log, ev.ID, req, 1)
		if err != nil {
			return sum, err
		}
		deleteBuilt(ctx, cfg, log, joined)
		return buildWaiting(ctx, cfg, log, started, sum)
	}
}

// joinWaiting adds to a batch's request the requests visible on the queue before its first
// build. A batch can be stale: the mapping's other poller gathers one in its window and holds it,
// throttled, through a long build, while the loads of that build wait on the queue. Built alone,
// such a batch (the customers' and the metadata's loads, say) leaves out the staged logs the
// consistent cut counts in, so the cut could not pass transactions RAW already held whole until
// the next build (docs/benchmarks.md, h/cutstall's run 5: 120 s). The joined requests are
// deleted once the build succeeded; a failed build leaves them to show again, as its batch does.
func joinWaiting(ctx context.Context, cfg Config, log *slog.Logger, req Request) ([]events.SQSMessage, Request) {
	if cfg.Requests == nil {
		return nil, req
	}
	msgs, err := cfg.Requests.ReceiveWaiting(ctx)
	if err != nil {
		log.Warn("could not read the build requests waiting; building the batch alone", "error", err)
		return nil, req
	}
	if len(msgs) == 0 {
		return nil, req
	}
	waited, bad := RequestFromSQS(events.SQSEvent{Records: msgs})
	for _, err := range bad {
		log.Error("build request unreadable; building everything", "error", err)
	}
	return msgs, req.union(waited)
}

// union is the request that builds what either of two requests from the queue selects (they
// carry a selection only): everything when one does.
func (r Request) union(o Request) Request {
	if r.Select == "" || o.Select == "" {
		return Request{}
	}
	nodes := strings.Fields(r.Select + " " + o.Select)
	slices.Sort(nodes)
	return Request{Select: strings.Join(slices.Compact(nodes), " ")}
}

// deleteBuilt deletes requests an invocation built: when they show again they only cost a build.
func deleteBuilt(ctx context.Context, cfg Config, log *slog.Logger, msgs []events.SQSMessage) {
	if len(msgs) == 0 {
		return
	}
	if err := cfg.Requests.DeleteMessages(ctx, msgs); err != nil {
		log.Warn("could not delete build requests already built", "messages", len(msgs), "error", err)
	}
}

// build runs one dbt build for req and reports it (log line, metrics, the published cut); nth
// counts the builds of the invocation (buildWaiting's).
func build(ctx context.Context, cfg Config, log *slog.Logger, eventID string, req Request, nth int) (Summary, error) {
	fromLoads := req.Select != "" && strings.HasPrefix(eventID, sqsEventPrefix)
	if fromLoads && missingModels(ctx, cfg, log) {
		req = Request{}
	}
	sum, err := Run(ctx, cfg, req)
	if err != nil && fromLoads && req.Select != "" {
		// On a new warehouse a build selected from loads reaches tests whose other parent no
		// load has built yet (accounts' relationship to stg_customers): build everything now
		// rather than leave the batch hidden for the queue's visibility timeout. Where
		// Config.Missing says so beforehand (locally), that build is not lost.
		log.Warn("dbt build of loaded tables failed; building everything", "event_id", eventID, "select", req.Select, "error", err)
		emitMetrics(cfg.EMF, sum)
		req = Request{}
		sum, err = Run(ctx, cfg, req)
	}
	if !sum.started.IsZero() {
		sum.Cut = publishedCut(ctx, cfg.Cut, sum.started, log)
	}
	emitMetrics(cfg.EMF, sum)
	attrs := []any{"event_id", eventID, "select", req.Select, "full_refresh", req.FullRefresh, "indirect_selection", req.IndirectSelection,
		"invocation_id", sum.InvocationID, "models_built", sum.ModelsBuilt,
		"models_failed", sum.ModelsFailed, "models_skipped", sum.ModelsSkipped,
		"tests_passed", sum.TestsPassed, "tests_warned", sum.TestsWarned,
		"tests_failed", sum.TestsFailed, "elapsed_s", sum.ElapsedSeconds, "wall_s", sum.WallSeconds, "build_of_invocation", nth}
	if c := sum.Cut; c != nil {
		attrs = append(attrs, "cut_lsn", c.LSN)
		if c.LagSeconds != nil {
			attrs = append(attrs, "cut_commit_ts", c.CommitTime, "cut_lag_s", *c.LagSeconds)
		}
	}
	if err != nil {
		for _, f := range sum.Failures {
			log.Error("dbt node failed", "node", f.Node, "status", f.Status, "message", f.Message)
		}
		log.Error("dbt build failed", append(attrs, "error", err)...)
		return sum, err
	}
	log.Info("dbt build", attrs...)
	return sum, nil
}

// chainBudget bounds how long one invocation goes on building the requests that waited in the
// queue (buildWaiting): past it the invocation ends, and the batch the mapping's other poller
// holds, throttled meanwhile, gets its turn.
const chainBudget = time.Minute

// buildWaiting builds, once a build has ended, the build requests that arrived while it ran,
// again and again while some waited, within chainBudget and the invocation's deadline; it
// returns the last build's summary (Config.Built is told each earlier one). With one build at a
// time, the mapping's pollers are throttled while a build runs and retry with a backoff Lambda
// does not publish (a "gradual backoff"); the batching window then delays the next build again.
// Reading the queue here starts the next build at once, without counting on either. Requests
// are deleted once their build succeeded; those of a failed build show again after the queue's
// visibility timeout, as a failed batch's do, and the invocation fails.
func buildWaiting(ctx context.Context, cfg Config, log *slog.Logger, started time.Time, sum Summary) (Summary, error) {
	for nth := 2; cfg.Requests != nil && time.Since(started) < chainBudget && roomForAnother(ctx, sum.Wall); nth++ {
		msgs, err := cfg.Requests.ReceiveWaiting(ctx)
		if err != nil {
			// They stay on the queue for the mapping's pollers.
			log.Warn("could not read the build requests that waited; leaving them to the event source", "error", err)
			return sum, nil
		}
		if len(msgs) == 0 {
			return sum, nil
		}
		req, bad := RequestFromSQS(events.SQSEvent{Records: msgs})
		for _, err := range bad {
			log.Error("build request unreadable; building everything", "error", err)
		}
		if cfg.Built != nil {
			cfg.Built(sum, nil)
		}
		if sum, err = build(ctx, cfg, log, sqsEventPrefix+msgs[0].MessageId, req, nth); err != nil {
			return sum, err
		}
		deleteBuilt(ctx, cfg, log, msgs)
	}
	return sum, nil
}

// roomForAnother reports whether the invocation's deadline leaves room for another build as long
// as the last, twice over, and a margin.
func roomForAnother(ctx context.Context, last time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > 2*last+30*time.Second
}

// missingModels reports whether the warehouse lacks one of the project's models (Config.Missing),
// so that a build selected from loads must build everything: its tests would read the missing
// model. Unknown (no Missing, or it failed) is false: the selected build runs as asked.
func missingModels(ctx context.Context, cfg Config, log *slog.Logger) bool {
	if cfg.Missing == nil {
		return false
	}
	missing, err := cfg.Missing(ctx)
	if err != nil {
		log.Warn("could not tell which models the warehouse holds; building the selection", "error", err)
		return false
	}
	if len(missing) > 0 {
		log.Info("the warehouse lacks models; building everything", "missing", strings.Join(missing, " "))
	}
	return len(missing) > 0
}

// sqsEventPrefix starts the ID requestFromPayload gives an SQS batch.
const sqsEventPrefix = "sqs:"

// requestFromPayload reads the Request of an invocation: an SQS batch's, or an EventBridge
// event's (ev is that event; for a batch, its ID names the first message).
func requestFromPayload(payload json.RawMessage, log *slog.Logger) (events.EventBridgeEvent, Request, error) {
	var probe struct {
		Records []events.SQSMessage `json:"Records"`
	}
	if json.Unmarshal(payload, &probe) == nil && len(probe.Records) > 0 {
		ev := events.EventBridgeEvent{ID: sqsEventPrefix + probe.Records[0].MessageId}
		req, bad := RequestFromSQS(events.SQSEvent{Records: probe.Records})
		for _, err := range bad {
			log.Error("build request unreadable; building everything", "error", err)
		}
		return ev, req, nil
	}
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return ev, Request{}, fmt.Errorf("event %.200s: neither an EventBridge event nor an SQS batch: %w", payload, err)
	}
	req, err := RequestFrom(ev)
	return ev, req, err
}

// RequestFromSQS reads a batch of build requests (buildrequest.Message, one per load that committed rows
// or per operator's build now): build what is downstream of the RAW tables and models any of them
// names (source:raw.<table>+ and <model>+, which take the tests below them too), or everything
// when one asks for all. A request that cannot be read is returned in bad and makes the build
// select everything, so no change is left unbuilt.
func RequestFromSQS(ev events.SQSEvent) (req Request, bad []error) {
	nodes, all := map[string]bool{}, false
	for _, m := range ev.Records {
		var body buildrequest.Message
		err := strictjson.Unmarshal([]byte(m.Body), &body)
		if err == nil {
			err = body.Check()
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("message %s %.200q: want {\"tables\": [\"<raw table>\", ...]}, {\"model\": \"<model>\"} or {\"all\": true}: %w", m.MessageId, m.Body, err))
			continue
		}
		for _, t := range body.Tables {
			nodes["source:raw."+t+"+"] = true
		}
		if body.Model != "" {
			nodes[body.Model+"+"] = true
		}
		all = all || body.All
	}
	if len(bad) > 0 || all {
		return Request{}, bad
	}
	return Request{Select: strings.Join(slices.Sorted(maps.Keys(nodes)), " ")}, nil
}

// RequestFrom reads the Request in an event's detail. A schedule's detail is {} or absent:
// build everything.
func RequestFrom(ev events.EventBridgeEvent) (Request, error) {
	var req Request
	if len(ev.Detail) == 0 || string(ev.Detail) == "null" {
		return req, nil
	}
	if err := strictjson.Unmarshal(ev.Detail, &req); err != nil {
		return Request{}, fmt.Errorf("event %s detail %s: want {\"select\": \"<dbt selector>\", \"full_refresh\": false}: %w",
			ev.ID, ev.Detail, err)
	}
	return req, nil
}

// emitMetrics writes a build's outcome as CloudWatch Embedded Metric Format (template.yaml's
// DbtFailureAlarm watches DbtFailures).
func emitMetrics(w io.Writer, s Summary) {
	if w == nil {
		return
	}
	metrics := []emf.Metric{
		{Name: "DbtModelsBuilt", Value: float64(s.ModelsBuilt), Unit: emf.Count},
		{Name: "DbtTestsPassed", Value: float64(s.TestsPassed), Unit: emf.Count},
		{Name: "DbtTestsFailed", Value: float64(s.TestsFailed), Unit: emf.Count},
		{Name: "DbtFailures", Value: float64(s.ModelsFailed + s.TestsFailed + s.OtherFailed), Unit: emf.Count},
		{Name: "DbtBuildSeconds", Value: s.WallSeconds, Unit: emf.Seconds},
	}
	if s.Cut != nil && s.Cut.LagSeconds != nil {
		// gold's freshness: how far behind the source its cut was when this build started
		metrics = append(metrics, emf.Metric{Name: "GoldCutLagSeconds", Value: *s.Cut.LagSeconds, Unit: emf.Seconds})
	}
	emf.New(w).Emit(map[string]string{"Function": "dbt-runner"}, metrics...)
}
