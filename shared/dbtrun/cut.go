package dbtrun

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
)

// Cut is gold's consistent cut as a build published it (docs/dbt.md, "Gold is a consistent
// cut"): every gold model shows the source database as of LSN. It is read from gold.cut, the
// published row, through the warehouse's own client (CutReader), never from dbt's console.
type Cut struct {
	// LSN is the cut's position: the END of the last source transaction in gold.
	LSN int64 `json:"lsn"`
	// CommitTime is that transaction's commit time.
	CommitTime *time.Time `json:"commit_ts,omitempty"`
	// BuiltAt is when the build that computed and published the cut started.
	BuiltAt time.Time `json:"built_at"`
	// LagSeconds is BuiltAt less CommitTime: how far behind the source gold's cut was when the
	// build started (the build's wall time adds to it until it is published).
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
}

// CutReader reads gold.cut, the published cut, from the warehouse the build wrote
// (history.Reader over Snowflake's SQL API in AWS, over the stack's DuckDB file locally).
type CutReader interface {
	Cut(ctx context.Context) (history.Cut, error)
}

// publishedCut is the cut this build published, read back from the warehouse once dbt is done:
// nil when it published none (gold.cut is older than the build's start: the build failed,
// left out the cut or a table built from it, or found no whole transaction yet) or there is no
// reader. dbt stamps built_at with its run_started_at, taken after started on the same clock.
func publishedCut(ctx context.Context, r CutReader, started time.Time, log *slog.Logger) *Cut {
	if r == nil {
		return nil
	}
	got, err := r.Cut(ctx)
	switch {
	case errors.Is(err, history.ErrNoCut):
		return nil
	case err != nil:
		// The build itself stands; only its report lacks the cut.
		log.Warn("read gold's published cut", "error", err)
		return nil
	case got.BuiltAt.Before(started):
		return nil
	}
	commit := got.CommitTS
	lag := got.BuiltAt.Sub(commit).Seconds()
	return &Cut{LSN: got.LSN, CommitTime: &commit, BuiltAt: got.BuiltAt, LagSeconds: &lag}
}
