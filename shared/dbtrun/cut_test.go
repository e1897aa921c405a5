package dbtrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

type fakeCut struct {
	cut history.Cut
	err error
}

func (f fakeCut) Cut(context.Context) (history.Cut, error) { return f.cut, f.err }

// The summary carries a cut only when gold.cut was published by this build: built at or after
// the runner started dbt.
func TestPublishedCutIsThisBuilds(t *testing.T) {
	started := time.Date(2026, 12, 1, 10, 0, 5, 0, time.UTC)
	commit := time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		reader  CutReader
		wantLag float64 // -1: no cut
	}{
		{name: "published by this build", reader: fakeCut{cut: history.Cut{LSN: 42, CommitTS: commit, BuiltAt: started.Add(250 * time.Millisecond)}}, wantLag: 4.25},
		{name: "left by an earlier build", reader: fakeCut{cut: history.Cut{LSN: 41, CommitTS: commit, BuiltAt: started.Add(-time.Second)}}, wantLag: -1},
		{name: "none published yet", reader: fakeCut{err: fmt.Errorf("%w: empty", history.ErrNoCut)}, wantLag: -1},
		{name: "warehouse unreachable", reader: fakeCut{err: errors.New("connection refused")}, wantLag: -1},
		{name: "no reader", reader: nil, wantLag: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := publishedCut(context.Background(), tc.reader, started, slog.New(slog.DiscardHandler))
			switch {
			case tc.wantLag < 0 && c != nil:
				t.Fatalf("cut %+v, want none", *c)
			case tc.wantLag < 0:
			case c == nil:
				t.Fatal("no cut, want this build's")
			case c.LSN != 42 || !c.CommitTime.Equal(commit) || c.LagSeconds == nil || *c.LagSeconds != tc.wantLag:
				t.Fatalf("cut %+v (lag %v), want lsn 42, commit %v, lag %v", *c, c.LagSeconds, commit, tc.wantLag)
			}
		})
	}
}

// A build that publishes gold.cut reports it, as the warehouse holds it, in the summary and as
// the GoldCutLagSeconds metric, whether dbt runs in the warm worker or as a process of its own
// (the CLI); a build that does not publish reports none. dbt runs quiet (DBT_QUIET: errors
// only), where a cut scraped from its console would be missing: it is read back from gold.cut.
func TestHandlerReportsGoldCut(t *testing.T) {
	for _, processPerRun := range []bool{false, true} {
		t.Run("process per run "+strconv.FormatBool(processPerRun), func(t *testing.T) {
			t.Cleanup(StopWorkers)
			path := warehouse(t, "scenario")
			var metrics, console bytes.Buffer
			cfg := Config{DBT: venvTool(t, "dbt"), ProjectDir: filepath.Join(repoRoot(t), "dbt"), Target: "duckdb",
				WorkDir: t.TempDir(), Env: []string{"WAREHOUSE_PATH=" + path, "DBT_QUIET=true"}, EMF: &metrics,
				Output: &console, ProcessPerRun: processPerRun, Cut: history.New(duckdb.File{Path: path})}
			build := func(detail string) Summary {
				t.Helper()
				payload, _ := json.Marshal(events.EventBridgeEvent{ID: "test", Detail: json.RawMessage(detail)})
				sum, err := Handler(cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))(context.Background(), payload)
				if err != nil {
					t.Fatalf("dbt build %s: %v", detail, err)
				}
				return sum
			}

			sum := build(`{}`)
			if strings.Contains(console.String(), "gold.cut published") {
				t.Fatalf("dbt printed the cut although quiet:\n%s", console.String())
			}
			query := "import duckdb, sys; print(*duckdb.connect(sys.argv[1], read_only=True).execute(" +
				"'select lsn, epoch_us(commit_ts), epoch_us(built_at) from gold.cut').fetchone())"
			out, err := exec.Command(venvTool(t, "python"), "-c", query, path).CombinedOutput()
			if err != nil {
				t.Fatalf("read gold.cut: %v\n%s", err, out)
			}
			var lsn, commitUs, builtUs int64
			if _, err := fmt.Sscan(string(out), &lsn, &commitUs, &builtUs); err != nil || lsn == 0 {
				t.Fatalf("gold.cut %q (%v): the scenario should have a whole transaction", out, err)
			}
			c := sum.Cut
			if c == nil || c.LSN != lsn || c.CommitTime == nil || c.CommitTime.UnixMicro() != commitUs ||
				c.BuiltAt.UnixMicro() != builtUs || c.LagSeconds == nil || *c.LagSeconds != float64(builtUs-commitUs)/1e6 {
				t.Fatalf("summary's cut %+v; gold.cut holds lsn %d, commit %d us, built %d us", c, lsn, commitUs, builtUs)
			}
			var line map[string]any
			if err := json.Unmarshal(bytes.TrimSpace(metrics.Bytes()), &line); err != nil {
				t.Fatalf("EMF %q: %v", metrics.String(), err)
			}
			if got, ok := line["GoldCutLagSeconds"].(float64); !ok || got != *c.LagSeconds {
				t.Errorf("EMF line %s: GoldCutLagSeconds %v, want %v", metrics.String(), line["GoldCutLagSeconds"], *c.LagSeconds)
			}

			metrics.Reset()
			if sum := build(`{"select":"stg_customers_changes"}`); sum.Cut != nil {
				t.Errorf("a build that did not publish gold.cut reports cut %+v", *sum.Cut)
			}
			if strings.Contains(metrics.String(), "GoldCutLagSeconds") {
				t.Errorf("a build that did not publish gold.cut emitted GoldCutLagSeconds: %s", metrics.String())
			}
		})
	}
}
