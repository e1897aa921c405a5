// Package dbtrun runs the project's dbt build as a scheduled job and reports what it did: the
// models built, the tests passed and failed, and how long it took, read from dbt's own
// run_results.json. A failed model or test is a failed run, so the scheduler (EventBridge in
// AWS, the local scheduler in `fin up`) sees it.
package dbtrun

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

// ErrFailed is returned (wrapped, with the failing nodes named) when dbt ran and a model, test,
// seed or snapshot failed. Errors that are not ErrFailed mean dbt could not run at all.
var ErrFailed = errors.New("dbt build failed")

// Config says which dbt to run, on which project, and where it may write.
type Config struct {
	// DBT is the dbt executable; "dbt" (from PATH) when empty.
	DBT string
	// ProjectDir is the dbt project (the repository's dbt/ folder).
	ProjectDir string
	// ProfilesDir holds profiles.yml; ProjectDir when empty.
	ProfilesDir string
	// Target is the profile target (duckdb, snowflake); the profile's default when empty.
	Target string
	// WorkDir receives dbt's target/ (run_results.json, the partial-parse cache) and logs/. It
	// must be writable: /tmp in Lambda. ProjectDir when empty.
	WorkDir string
	// Env is added to the process environment of dbt, e.g. WAREHOUSE_PATH=/abs/warehouse.duckdb
	// or the SNOWFLAKE_* variables profiles.yml reads.
	Env []string
	// EnvDefaults are NAME=value entries dbt gets unless the process environment (or Env) sets
	// the name: defaults a user can still override, such as DBT_THREADS.
	EnvDefaults []string
	// Output receives dbt's console output as it runs (nil discards it; the end of it is kept
	// for error messages either way).
	Output io.Writer
	// EMF, when set, receives each build's outcome as CloudWatch Embedded Metric Format lines
	// (the Lambda: os.Stdout).
	EMF io.Writer
	// Python runs the warm dbt worker (worker.py), which keeps dbt imported between runs; empty
	// means the python beside the DBT executable (a virtualenv's bin/), and when there is none
	// every run starts a fresh dbt process.
	Python string
	// Cut reads the cut a build published (Summary.Cut); nil reports none.
	Cut CutReader
	// ProcessPerRun starts a fresh dbt process for every run instead of a warm worker.
	ProcessPerRun bool
	// Nice, above zero, runs dbt (the worker or each process) that much below this process's CPU
	// priority, through nice(1) where it exists: locally a build can take both cores for 20 s,
	// and the capture, landing and loads that keep RAW fresh must not wait for it.
	Nice int
	// Missing, when set, names the project's models the warehouse does not hold yet. A build
	// selected from loads then builds everything at once: the first build on a new warehouse
	// must, as its tests read models no selected build has made. Without it (AWS, where the
	// runner has no warehouse client) a selected build that fails is followed by a full one.
	Missing func(context.Context) ([]string, error)
	// Lock, when set, is held while dbt runs. Locally it takes the snapshot of RAW dbt reads and
	// lends dbt the models file (DuckDB allows one writing process per file).
	Lock Locker
	// Requests, when set, is the build-request queue (template.yaml's BuildRequests): after a
	// build, the requests that waited in it are built at once, in the same invocation
	// (buildWaiting).
	Requests Requests
	// Built, when set, is told each build of an invocation but the last, whose summary the
	// invocation returns (the local console records every build).
	Built func(Summary, error)
}

// Requests is the build-request queue as the dbt-runner reads it itself: the requests visible
// now, hidden for the queue's visibility timeout (SQS ReceiveMessage, no long poll), and their
// deletion once built.
type Requests interface {
	ReceiveWaiting(ctx context.Context) ([]events.SQSMessage, error)
	DeleteMessages(ctx context.Context, msgs []events.SQSMessage) error
}

// Locker grants exclusive use of the warehouse until release is called.
type Locker interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// Request is what one run should build.
type Request struct {
	// Select is a dbt selector ("marts", "stg_accounts+", "tag:hourly path:models/marts");
	// empty builds everything.
	Select string `json:"select,omitempty"`
	// FullRefresh rebuilds incremental models from all RAW rows.
	FullRefresh bool `json:"full_refresh,omitempty"`
	// IndirectSelection is dbt's --indirect-selection (eager, cautious, buildable; dbt's default,
	// eager, when empty): which tests of the selected models run.
	IndirectSelection string `json:"indirect_selection,omitempty"`
}

// selectorPattern admits dbt's selector syntax (names, paths, methods, graph and set operators)
// and nothing that could be read as another command-line flag.
var selectorPattern = regexp.MustCompile(`^[A-Za-z0-9_.:/*+@,\- ]*$`)

// Args returns dbt's command line for r, or an error naming what is wrong with the selector.
func (c Config) Args(r Request) ([]string, error) {
	if c.ProjectDir == "" {
		return nil, errors.New("dbt project dir is not configured")
	}
	args := []string{"build",
		"--project-dir", c.ProjectDir,
		"--profiles-dir", c.profilesDir(),
		"--target-path", c.targetPath(),
		"--log-path", filepath.Join(c.workDir(), "logs"),
	}
	if c.Target != "" {
		args = append(args, "--target", c.Target)
	}
	if r.FullRefresh {
		args = append(args, "--full-refresh")
	}
	switch r.IndirectSelection {
	case "":
	case "eager", "cautious", "buildable":
		args = append(args, "--indirect-selection", r.IndirectSelection)
	default:
		return nil, fmt.Errorf("indirect selection %q: want eager, cautious or buildable", r.IndirectSelection)
	}
	if sel := strings.Fields(r.Select); len(sel) > 0 {
		if !selectorPattern.MatchString(r.Select) {
			return nil, fmt.Errorf("selector %q: only names, paths, methods (tag:, path:) and + @ * , may appear", r.Select)
		}
		for _, s := range sel {
			if strings.HasPrefix(s, "-") {
				return nil, fmt.Errorf("selector %q: %q looks like a flag, not a node", r.Select, s)
			}
		}
		args = append(append(args, "--select"), sel...)
	}
	return args, nil
}

func (c Config) profilesDir() string {
	if c.ProfilesDir != "" {
		return c.ProfilesDir
	}
	return c.ProjectDir
}

func (c Config) workDir() string {
	if c.WorkDir != "" {
		return c.WorkDir
	}
	return c.ProjectDir
}

func (c Config) dbt() string { return cmp.Or(c.DBT, "dbt") }

// defaultEnv is what every dbt run gets unless the environment says otherwise. No log file of
// dbt's own (DBT_LOG_LEVEL_FILE=debug brings WorkDir/logs/dbt.log back, with every statement and
// its duration): the console's lines go to Output either way, and writing the debug file cost an
// incremental build of the project about a tenth of its time.
var defaultEnv = []string{"DBT_LOG_LEVEL_FILE=none"}

// environ is dbt's environment: the defaults, then this process's environment, then dbtEnv and
// Env; a later entry for a name wins.
func (c Config) environ() []string {
	return slices.Concat(defaultEnv, c.EnvDefaults, settings.Environ(), dbtEnv, c.Env)
}

func (c Config) targetPath() string { return filepath.Join(c.workDir(), "target") }

// Run runs `dbt build` for r and returns what it did. The error wraps ErrFailed when a node
// failed; the Summary is filled whenever dbt got as far as writing run_results.json.
func Run(ctx context.Context, cfg Config, r Request) (Summary, error) {
	args, err := cfg.Args(r)
	if err != nil {
		return Summary{}, err
	}
	results := filepath.Join(cfg.targetPath(), "run_results.json")
	// A result file left by an earlier run must never be reported as this one's.
	if err := os.Remove(results); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Summary{}, fmt.Errorf("remove previous %s: %w", results, err)
	}
	if cfg.Lock != nil {
		release, err := cfg.Lock.Acquire(ctx)
		if err != nil {
			return Summary{}, fmt.Errorf("wait for the warehouse: %w", err)
		}
		defer release()
	}

	bin := cfg.dbt()
	tail := &tailBuffer{max: 8 << 10}
	var out io.Writer = tail
	if cfg.Output != nil {
		out = io.MultiWriter(cfg.Output, tail)
	}
	env := cfg.environ()
	started := time.Now()
	var runErr error
	if python := cfg.python(); python != "" {
		var w *worker
		if w, runErr = workerFor(cfg, python); runErr == nil {
			runErr = w.invoke(ctx, args, env, results, out)
		}
	} else {
		name, argv := cfg.niced(bin, args...)
		cmd := exec.CommandContext(ctx, name, argv...)
		dieWithParent(cmd)
		cmd.Dir = cfg.ProjectDir
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = 10 * time.Second
		runErr = cmd.Run()
	}
	wall := time.Since(started)

	data, readErr := os.ReadFile(results)
	if readErr != nil {
		if runErr == nil {
			runErr = errors.New("exited 0")
		}
		return Summary{}, fmt.Errorf("dbt %s wrote no %s (%v); its output ended:\n%s",
			strings.Join(args[:1], " "), results, runErr, tail.String())
	}
	sum, err := parseRunResults(data)
	if err != nil {
		return Summary{}, fmt.Errorf("read %s: %w", results, err)
	}
	sum.Selector = r.Select
	sum.started = started
	sum.FullRefresh = r.FullRefresh
	sum.Wall = wall
	sum.WallSeconds = wall.Seconds()
	if failed := sum.failedNodes(); len(failed) > 0 {
		return sum, fmt.Errorf("%w: %s", ErrFailed, strings.Join(failed, ", "))
	}
	if runErr != nil {
		// dbt reported no failed node but still exited non-zero (e.g. it was interrupted).
		return sum, fmt.Errorf("%w: dbt exited with %v; its output ended:\n%s", ErrFailed, runErr, tail.String())
	}
	return sum, nil
}

// ProjectModels names the models of the dbt project at projectDir (each models/**/*.sql), as dbt
// names their relations.
func ProjectModels(projectDir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(filepath.Join(projectDir, "models"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".sql") {
			names = append(names, strings.TrimSuffix(d.Name(), ".sql"))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list the models of %s: %w", projectDir, err)
	}
	slices.Sort(names)
	return names, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.buf.String() }
