package stack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
)

// BenchmarkBuildRequestGaps runs the build-request path of template.yaml (the BuildRequests queue,
// the dbt-runner's SQS mapping and reserved concurrency of 1, as `fin up` runs them) under a
// request every 300 ms, with a stand-in dbt whose build takes FIN_BENCH_BUILD (default 2.8s, the
// quiet machine's build wall p50) for FIN_BENCH_SECONDS (default 90): the dbt-runner as it is
// (reading the queue after a build) beside the same without that (the event source alone), side
// by side in one run. Reported: the gap from a build's end to the next build's start, and each
// request's wait until the end of the first build started after it was sent (commit -> gold
// without RAW's part). Sleeps only: the machine's load barely moves it.
//
//	go test -run '^$' -bench BuildRequestGaps -benchtime 1x ./shared/stack
func BenchmarkBuildRequestGaps(b *testing.B) {
	build, seconds := 2800*time.Millisecond, 90
	if v, err := time.ParseDuration(os.Getenv("FIN_BENCH_BUILD")); err == nil {
		build = v
	}
	if v, err := strconv.Atoi(os.Getenv("FIN_BENCH_SECONDS")); err == nil {
		seconds = v
	}
	for range b.N {
		var wg sync.WaitGroup
		res := map[bool]gapResult{}
		var mu sync.Mutex
		for _, reads := range []bool{true, false} {
			wg.Go(func() {
				r := buildGaps(b, reads, build, 300*time.Millisecond, time.Duration(seconds)*time.Second)
				mu.Lock()
				res[reads] = r
				mu.Unlock()
			})
		}
		wg.Wait()
		on, off := res[true], res[false]
		fmt.Printf("builds of %v, a request every 300ms for %d s:\n", build, seconds)
		for _, r := range []struct {
			what     string
			got, ref []float64
		}{{"gap from a build's end to the next's start", on.gaps, off.gaps}, {"request -> end of its build", on.waits, off.waits}} {
			fmt.Printf("  %s: p50 %.3f s, p95 %.3f s (event source alone: p50 %.3f s, p95 %.3f s; ratio p50 %.2f, p95 %.2f)\n",
				r.what, pct(r.got, .5), pct(r.got, .95), pct(r.ref, .5), pct(r.ref, .95), pct(r.got, .5)/pct(r.ref, .5), pct(r.got, .95)/pct(r.ref, .95))
		}
		fmt.Printf("  builds: %d (event source alone: %d)\n", on.builds, off.builds)
		b.ReportMetric(pct(on.waits, .5)/pct(off.waits, .5), "wait-p50-ratio")
	}
}

type gapResult struct {
	builds      int
	gaps, waits []float64 // seconds
}

func buildGaps(b *testing.B, readQueue bool, build, every, run time.Duration) gapResult {
	tpl, err := LoadTemplate(templatePath, nil)
	if err != nil {
		b.Fatal(err)
	}
	q := lambdalocal.Queues(tpl)[tpl.Queues["BuildRequests"].URL]
	dir := b.TempDir()
	script := filepath.Join(dir, "dbt")
	// The stand-in dbt: notes when each build starts and ends, and writes an empty result.
	body := fmt.Sprintf(`#!/bin/sh
echo "start $(date +%%s%%N)" >> %[1]s/builds
while [ $# -gt 0 ]; do [ "$1" = --target-path ] && target=$2; shift; done
sleep %[2]f
mkdir -p "$target"
printf '{"metadata":{"invocation_id":"x"},"elapsed_time":0,"results":[]}' > "$target/run_results.json"
echo "end $(date +%%s%%N)" >> %[1]s/builds
`, dir, build.Seconds())
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		b.Fatal(err)
	}
	cfg := dbtrun.Config{DBT: script, ProjectDir: dir, WorkDir: dir, ProcessPerRun: true}
	if readQueue {
		cfg.Requests = localRequests{q}
	}
	fn := lambdalocal.TemplateFunction(tpl, dbtFunction, dbtrun.Handler(cfg, slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		lambdalocal.RunSQS(ctx, lambdalocal.SQSMapping{Event: tpl.Functions[dbtFunction].SQS[0], Queue: q, Function: fn,
			Logger: slog.New(slog.DiscardHandler)})
	})
	var sent []time.Time
	for end := time.Now().Add(run); time.Now().Before(end); time.Sleep(every) {
		sent = append(sent, time.Now())
		q.SendMessage(ctx, `{"tables":["transactions"]}`)
	}
	time.Sleep(3 * build)
	cancel()
	wg.Wait()
	data, err := os.ReadFile(filepath.Join(dir, "builds"))
	if err != nil {
		b.Fatal(err)
	}
	var starts, ends []time.Time
	for l := range strings.Lines(string(data)) {
		kind, ns, _ := strings.Cut(strings.TrimSpace(l), " ")
		n, _ := strconv.ParseInt(ns, 10, 64)
		if kind == "start" {
			starts = append(starts, time.Unix(0, n))
		} else {
			ends = append(ends, time.Unix(0, n))
		}
	}
	r := gapResult{builds: len(starts)}
	for i := 1; i < len(starts) && i <= len(ends); i++ {
		r.gaps = append(r.gaps, starts[i].Sub(ends[i-1]).Seconds())
	}
	for _, s := range sent {
		if i := slices.IndexFunc(starts, func(t time.Time) bool { return t.After(s) }); i >= 0 && i < len(ends) {
			r.waits = append(r.waits, ends[i].Sub(s).Seconds())
		}
	}
	return r
}

// pct is the nearest-rank percentile p of x.
func pct(x []float64, p float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(x))
	return s[max(0, min(int(p*float64(len(s))+0.999999)-1, len(s)-1))]
}
