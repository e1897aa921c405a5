package dbtrun

import (
	"bytes"
	"context"
	"encoding/json"
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
)

func TestCutWatcherReadsReportCutsLine(t *testing.T) {
	built := time.Date(2026, 12, 1, 10, 0, 5, 250_000_000, time.UTC)
	commit := time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC)
	line := `10:00:09  fin.gold_cut {"lsn": 4242, "commit_ts_us": ` + strconv.FormatInt(commit.UnixMicro(), 10) +
		`, "built_at_us": ` + strconv.FormatInt(built.UnixMicro(), 10) + "}\n"
	jsonLine, _ := json.Marshal(map[string]any{"info": map[string]any{"msg": strings.TrimSpace(line[10:])}})
	for _, tc := range []struct {
		name    string
		writes  []string
		wantLSN int64
		wantLag float64 // -1: no commit time
		none    bool
	}{
		{name: "text format", writes: []string{"10:00:08  1 of 13 START sql incremental model gold.cut\n", line}, wantLSN: 4242, wantLag: 4.25},
		{name: "split across writes", writes: []string{line[:20], line[20:31], line[31:]}, wantLSN: 4242, wantLag: 4.25},
		{name: "JSON log format", writes: []string{string(jsonLine) + "\n"}, wantLSN: 4242, wantLag: 4.25},
		{name: "no transaction yet", writes: []string{`x  fin.gold_cut {"lsn": 0, "commit_ts_us": null, "built_at_us": 1}` + "\n"}, wantLSN: 0, wantLag: -1},
		{name: "the last report wins", writes: []string{strings.Replace(line, "4242", "1", 1), line}, wantLSN: 4242, wantLag: 4.25},
		{name: "no report", writes: []string{"10:00:09  Completed successfully\n"}, none: true},
		{name: "not ended by a newline yet", writes: []string{strings.TrimSuffix(line, "\n")}, none: true},
		{name: "malformed", writes: []string{`x  fin.gold_cut {"lsn": "P"}` + "\n"}, none: true},
		{name: "inside an overlong line", writes: []string{strings.Repeat("x", maxCutLine+1), line}, none: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &cutWatcher{}
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", len(s), n, err)
				}
			}
			switch {
			case tc.none && w.cut != nil:
				t.Fatalf("cut %+v read from %q, want none", *w.cut, tc.writes)
			case tc.none:
			case w.cut == nil:
				t.Fatalf("no cut read from %q", tc.writes)
			case w.cut.LSN != tc.wantLSN:
				t.Errorf("lsn %d, want %d", w.cut.LSN, tc.wantLSN)
			case tc.wantLag < 0 && (w.cut.LagSeconds != nil || w.cut.CommitTime != nil):
				t.Errorf("a cut before the first transaction has lag %v, commit %v; want neither", w.cut.LagSeconds, w.cut.CommitTime)
			case tc.wantLag >= 0 && (w.cut.LagSeconds == nil || *w.cut.LagSeconds != tc.wantLag || !w.cut.CommitTime.Equal(commit) || !w.cut.BuiltAt.Equal(built)):
				t.Errorf("cut %+v (lag %v), want commit %v, built %v, lag %v", *w.cut, w.cut.LagSeconds, commit, built, tc.wantLag)
			}
		})
	}
}

// A build that builds gold.cut reports it, as the warehouse holds it, in the summary and as the
// GoldCutLagSeconds metric, whether dbt runs in the warm worker or as a process of its own (the
// CLI); a build that does not build the cut reports none.
func TestHandlerReportsGoldCut(t *testing.T) {
	for _, processPerRun := range []bool{false, true} {
		t.Run("process per run "+strconv.FormatBool(processPerRun), func(t *testing.T) {
			t.Cleanup(StopWorkers)
			path := warehouse(t, "scenario")
			var metrics bytes.Buffer
			cfg := Config{DBT: venvTool(t, "dbt"), ProjectDir: filepath.Join(repoRoot(t), "dbt"), Target: "duckdb",
				WorkDir: t.TempDir(), Env: []string{"WAREHOUSE_PATH=" + path}, EMF: &metrics, ProcessPerRun: processPerRun}
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
				t.Errorf("a build that did not build gold.cut reports cut %+v", *sum.Cut)
			}
			if strings.Contains(metrics.String(), "GoldCutLagSeconds") {
				t.Errorf("a build that did not build gold.cut emitted GoldCutLagSeconds: %s", metrics.String())
			}
		})
	}
}
