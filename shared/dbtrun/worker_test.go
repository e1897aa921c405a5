package dbtrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeWorker is a stand-in for worker.py that speaks its protocol without dbt: it answers
// success, a failure for a request mentioning "fail", and never answers one mentioning "hang".
const fakeWorker = `#!/bin/sh
while read -r line; do
  case "$line" in
    *hang*) continue ;;
    *timed*) echo '{"success": true, "error": "", "timings": "request 1.500 s: nodes 1.000 s (cpu 0.500)"}' >&3 ;;
    *fail*) echo '{"success": false, "error": "boom"}' >&3 ;;
    *) echo '{"success": true, "error": ""}' >&3 ;;
  esac
done
`

func TestWorkerLifecycle(t *testing.T) {
	t.Cleanup(StopWorkers)
	dir := t.TempDir()
	python := filepath.Join(dir, "python")
	if err := os.WriteFile(python, []byte(fakeWorker), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{ProjectDir: dir, WorkDir: dir, Python: python}
	if got := cfg.python(); got != python {
		t.Fatalf("Config.Python %s is not used: python() = %q", python, got)
	}
	if got := (Config{Python: python, ProcessPerRun: true}).python(); got != "" {
		t.Fatalf("ProcessPerRun still chose a worker: %q", got)
	}
	get := func() *worker {
		t.Helper()
		w, err := workerFor(cfg, python)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	invoke := func(ctx context.Context, args ...string) error {
		t.Helper()
		return get().invoke(ctx, args, []string{"A=1"}, filepath.Join(dir, "run_results.json"), nil)
	}
	ctx := context.Background()

	first := get()
	if err := invoke(ctx, "build"); err != nil {
		t.Fatalf("a build the worker reports as a success: %v", err)
	}
	if err := invoke(ctx, "build", "fail"); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("a build the worker reports as failed: err = %v, want its error boom", err)
	}
	if get() != first {
		t.Fatal("a second run did not reuse the live worker")
	}
	var out strings.Builder
	if err := get().invoke(ctx, []string{"build", "timed"}, nil, filepath.Join(dir, "run_results.json"), &out); err != nil ||
		out.String() != "fin.dbt_worker: request 1.500 s: nodes 1.000 s (cpu 0.500)\n" {
		t.Fatalf("a reply with timings: err = %v, the run's output %q, want the timings on a line of their own", err, out.String())
	}

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := invoke(short, "build", "hang"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a run past its deadline: err = %v, want DeadlineExceeded", err)
	}
	if first.alive() {
		t.Fatal("the worker of a run past its deadline is still running")
	}
	second := get()
	if second == first || invoke(ctx, "build") != nil {
		t.Fatal("after the worker was stopped, the next run did not get a new, working one")
	}

	second.runs.Store(workerRuns)
	if third := get(); third == second {
		t.Fatalf("a worker that served %d builds was not replaced", workerRuns)
	}
	select {
	case <-second.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the replaced worker did not exit")
	}
}
