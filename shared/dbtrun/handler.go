package dbtrun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/emf"
)

// Handler is the dbt-runner function: on a scheduled EventBridge event it runs dbt build and
// returns the Summary, failing the invocation when a model or test failed. The event's detail
// may carry a Request ({"select": "marts", "full_refresh": false}); a schedule whose target
// Input is {"detail": {"select": "marts"}} delivers exactly that.
func Handler(cfg Config, log *slog.Logger) func(context.Context, events.EventBridgeEvent) (Summary, error) {
	return func(ctx context.Context, ev events.EventBridgeEvent) (Summary, error) {
		req, err := RequestFrom(ev)
		if err != nil {
			log.Error("dbt build not started", "event_id", ev.ID, "error", err)
			return Summary{}, err
		}
		sum, err := Run(ctx, cfg, req)
		emitMetrics(cfg.EMF, sum)
		attrs := []any{"event_id", ev.ID, "select", req.Select, "full_refresh", req.FullRefresh,
			"invocation_id", sum.InvocationID, "models_built", sum.ModelsBuilt,
			"models_failed", sum.ModelsFailed, "models_skipped", sum.ModelsSkipped,
			"tests_passed", sum.TestsPassed, "tests_warned", sum.TestsWarned,
			"tests_failed", sum.TestsFailed, "elapsed_s", sum.ElapsedSeconds, "wall_s", sum.WallSeconds}
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
}

// RequestFrom reads the Request in an event's detail. A schedule's detail is {} or absent:
// build everything.
func RequestFrom(ev events.EventBridgeEvent) (Request, error) {
	var req Request
	if len(ev.Detail) == 0 || string(ev.Detail) == "null" {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(ev.Detail))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
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
	emf.New(w).Emit(map[string]string{"Function": "dbt-runner"},
		emf.Metric{Name: "DbtModelsBuilt", Value: float64(s.ModelsBuilt), Unit: emf.Count},
		emf.Metric{Name: "DbtTestsPassed", Value: float64(s.TestsPassed), Unit: emf.Count},
		emf.Metric{Name: "DbtTestsFailed", Value: float64(s.TestsFailed), Unit: emf.Count},
		emf.Metric{Name: "DbtFailures", Value: float64(s.ModelsFailed + s.TestsFailed + s.OtherFailed), Unit: emf.Count},
		emf.Metric{Name: "DbtBuildSeconds", Value: s.WallSeconds, Unit: emf.Seconds})
}
