package stack

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// FunctionEnv is a function's environment locally, as `sam local` builds one: the template's
// Environment block for it, then local (the parts the local stack puts in place of AWS's), then
// the process environment (a user's override of any declared variable), then forced (what the
// local stack cannot do without, such as its own DuckDB files). Every read is of a variable
// shared/settings declares for function.
func FunctionEnv(tpl *samtemplate.Template, id, function string, local, forced map[string]string) *settings.Env {
	var vars map[string]string
	if f := tpl.Functions[id]; f != nil {
		vars = f.Environment
	}
	return settings.ForFunction(function, settings.Values(vars), settings.Values(local), settings.Process(), settings.Values(forced))
}

// runSchedules runs every schedule the template gives any function, as EventBridge would: the
// dbt-runner's (cfg.DbtSchedule replaces its expression locally, and each run is recorded for the
// console) and the API's housekeeping. fns holds the built functions by logical id; a scheduled
// function missing from it is an error, never a schedule silently not run.
func (s *Stack) runSchedules(ctx context.Context, fns map[string]*lambdalocal.Function, clock lambdalocal.Clock, run func(string, func() error)) error {
	var ids []string
	for _, id := range s.tpl.Names() {
		if len(s.tpl.Functions[id].Schedules) == 0 || s.tpl.Functions[id].Condition != "" && fns[id] == nil {
			continue
		}
		if fns[id] == nil { // checked before any schedule starts
			return fmt.Errorf("template %s schedules %s, which the local stack does not build", s.cfg.Template, id)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		expression, onResult := "", func([]byte, error) {}
		if id == dbtFunction {
			expression, onResult = s.cfg.DbtSchedule, s.recordDbtRun("schedule")
		}
		lambdalocal.RunSchedules(ctx, s.tpl, id, fns[id], expression, onResult, clock, run)
	}
	return nil
}

// runQueues runs every SQS event source mapping of the template into its function, as Lambda's
// pollers would; the dbt-runner's builds are recorded for the console, as scheduled ones are.
func (s *Stack) runQueues(ctx context.Context, fns map[string]*lambdalocal.Function, run func(string, func() error)) error {
	for _, id := range s.tpl.Names() {
		f := s.tpl.Functions[id]
		if len(f.SQS) == 0 || f.Condition != "" && fns[id] == nil {
			continue
		}
		if fns[id] == nil {
			return fmt.Errorf("template %s gives %s an SQS event source, but the local stack does not build it", s.cfg.Template, id)
		}
		for _, ev := range f.SQS {
			if !ev.Enabled {
				s.log.Info("SQS event source disabled in the template", "function", id, "event", ev.Name)
				continue
			}
			m := lambdalocal.SQSMapping{Event: ev, Queue: s.queues[s.tpl.Queues[ev.Queue].URL], Function: fns[id], Logger: s.log}
			if id == dbtFunction {
				m.OnResult = s.recordDbtRun("loads")
			}
			run(id+" SQS "+ev.Name, func() error { return lambdalocal.RunSQS(ctx, m) })
		}
	}
	return nil
}

// metricsLog is where a function's Embedded Metric Format lines go locally (stdout, hence
// CloudWatch, in Lambda): StateDir/logs/<function>.emf, 10 MB, then .1.
func (s *Stack) metricsLog(function string) (*lambdalocal.LogFile, error) {
	return s.logFile(filepath.Join(s.cfg.StateDir, "logs", function+".emf"), 10<<20)
}

// logFile opens a local log file that the stack closes when it stops.
func (s *Stack) logFile(path string, limit int64) (*lambdalocal.LogFile, error) {
	w, err := lambdalocal.OpenLogFile(path, limit)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, w)
	return w, nil
}

// function wraps a handler with the template's timeout for that function.
func (s *Stack) function(id string, handler any) *lambdalocal.Function {
	return lambdalocal.TemplateFunction(s.tpl, id, handler)
}

// buildLanding builds the cdc-landing function with its Lambda's constructor, writing to the
// stack's S3.
func (s *Stack) buildLanding(s3 landing.ObjectPutter) (*landing.Handler, error) {
	metrics, err := s.metricsLog(settings.Landing)
	if err != nil {
		return nil, err
	}
	env := FunctionEnv(s.tpl, landingFunction, settings.Landing, nil, map[string]string{"LAKE_BUCKET": s.cfg.Bucket})
	return landing.NewFunction(env, s3, metrics, s.log)
}

// buildLoader builds the warehouse-loader function with its Lambda's constructor, loading into
// the local DuckDB warehouse instead of Snowflake, and asking builds of the local queue its
// BUILD_QUEUE_URL names (the template's !Ref of the queue).
func (s *Stack) buildLoader(wh loader.Warehouse, objects loader.ObjectReader) (*loader.Handler, error) {
	metrics, err := s.metricsLog(settings.Loader)
	if err != nil {
		return nil, err
	}
	env := FunctionEnv(s.tpl, loaderFunction, settings.Loader, nil, nil)
	var builds loader.BuildRequests
	if url := env.Get("BUILD_QUEUE_URL"); url != "" {
		q := s.queues[url]
		if q == nil {
			return nil, fmt.Errorf("%s: BUILD_QUEUE_URL %s is none of the template's queues", loaderFunction, url)
		}
		builds = q
	}
	return loader.NewFunction(env, wh, objects, builds, metrics, s.log)
}

// buildAPI builds the api function with its Lambda's constructor, on the stack's pool and the
// local history.
func (s *Stack) buildAPI(ctx context.Context, hist api.History) (*api.Function, error) {
	env := FunctionEnv(s.tpl, apiFunction, settings.API, nil, nil)
	metrics, err := s.metricsLog(settings.API)
	if err != nil {
		return nil, err
	}
	return api.NewFunction(ctx, env, api.Deps{Pool: s.cfg.Pool, History: hist, DevSecretPath: s.cfg.DevSecretPath, Metrics: metrics})
}

// buildDbt builds the dbt-runner function with its Lambda's constructor, on DuckDB: the
// repository's venv and project, the stack's warehouse files, lower CPU priority, and the
// warehouse turn (dbt reads a snapshot of RAW and writes the models file). Its console output
// goes to StateDir/dbt/logs/console.log.
func (s *Stack) buildDbt(ctx context.Context) (*lambdalocal.Function, error) {
	console, err := s.logFile(filepath.Join(s.cfg.StateDir, "dbt", "logs", "console.log"), 10<<20)
	if err != nil {
		return nil, err
	}
	metrics, err := s.metricsLog(settings.DBT)
	if err != nil {
		return nil, err
	}
	snapshot := duckdb.SnapshotPath(s.cfg.WarehousePath)
	env := FunctionEnv(s.tpl, dbtFunction, settings.DBT, nil, map[string]string{
		"DBT_BIN": filepath.Join(s.cfg.Root, ".venv", "bin", "dbt"), "DBT_PROJECT_DIR": filepath.Join(s.cfg.Root, "dbt"),
		"DBT_PROFILES_DIR": filepath.Join(s.cfg.Root, "dbt"), "DBT_TARGET": "duckdb", "DBT_WORK_DIR": filepath.Join(s.cfg.StateDir, "dbt"),
		// dbt reads RAW from a snapshot the stack takes before each build (profiles.yml attaches it
		// read-only under the RAW catalog's name, and the sources read that database).
		"WAREHOUSE_PATH": s.cfg.WarehousePath, "RAW_SNAPSHOT_PATH": snapshot, "RAW_DATABASE": duckdb.RawCatalog,
	})
	// The console keeps each build's part of the output, and its results, through the turn.
	s.runs = &runCapture{out: console, turn: warehouseTurn{wh: s.wh, snapshot: snapshot, log: s.log}, newest: s.newestCommit,
		loaded: func() int64 { return s.loader.Metrics().RowsLoaded }, target: filepath.Join(s.cfg.StateDir, "dbt", "target")}
	h, err := dbtrun.NewFunction(ctx, env, dbtrun.Deps{Output: s.runs, Metrics: metrics, Nice: dbtNice,
		// One dbt thread per core, at most the profile's four: dbt's work between queries is
		// Python, one thread at a time, and more threads than cores only made a scheduled build
		// wait longer for it. DBT_THREADS in the environment wins.
		EnvDefaults: []string{"DBT_THREADS=" + strconv.Itoa(min(runtime.GOMAXPROCS(0), 4))},
		Lock:        s.runs, Missing: s.missingModels,
		// The cut a build published, read back from the models file once dbt let it go.
		Cut: history.New(s.wh),
		// After a build, the requests that waited on the queue its BUILD_QUEUE_URL names; every
		// build of an invocation is recorded for the console, as the invocation's last is.
		Requests: s.waitingBuildRequests(env), Built: s.recordDbtBuild("loads")}, s.log)
	if err != nil {
		return nil, err
	}
	return s.function(dbtFunction, h), nil
}

// waitingBuildRequests is the build-request queue the dbt-runner's BUILD_QUEUE_URL names (the
// template's !Ref of it), or nil when it names none.
func (s *Stack) waitingBuildRequests(env *settings.Env) dbtrun.Requests {
	if q := s.queues[env.Get("BUILD_QUEUE_URL")]; q != nil {
		return localRequests{q}
	}
	return nil
}

// localRequests reads the local build-request queue as the dbt-runner reads SQS: the messages
// visible now (a receive that does not wait), deleted by their receipts.
type localRequests struct{ q *lambdalocal.Queue }

func (r localRequests) ReceiveWaiting(ctx context.Context) ([]events.SQSMessage, error) {
	return r.q.Receive(ctx, maxWaitingRequests, time.Now()), nil
}

func (r localRequests) DeleteMessages(_ context.Context, msgs []events.SQSMessage) error {
	for _, m := range msgs {
		r.q.Delete(m.ReceiptHandle)
	}
	return nil
}

// maxWaitingRequests is how many requests one read takes, as dbtrun.SQSRequests's ten receives do.
const maxWaitingRequests = 100

// missingModels names the dbt project's models the models file does not hold yet (all of them on
// a new warehouse): the dbt-runner then builds everything instead of a selection from loads.
func (s *Stack) missingModels(ctx context.Context) ([]string, error) {
	want, err := dbtrun.ProjectModels(filepath.Join(s.cfg.Root, "dbt"))
	if err != nil {
		return nil, err
	}
	have, err := s.wh.ModelNames(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(want, func(m string) bool { return slices.Contains(have, m) }), nil
}

// dbtNice is the CPU priority dbt runs at locally: a build is batch work that can take both
// cores for 20 s, and at the default priority it starved the capture, landing and loads that
// RAW's freshness depends on (p95 2-3 s instead of about 1 s on a busy machine).
const dbtNice = 10

// warehouseTurn prepares dbt's turn: a snapshot of RAW for dbt to read, and the models file for
// it to write. Loads go on into RAW meanwhile; queries that need a model wait for dbt.
type warehouseTurn struct {
	wh       *duckdb.Warehouse
	snapshot string
	log      *slog.Logger
}

func (t warehouseTurn) Acquire(ctx context.Context) (func(), error) {
	st, err := t.wh.Snapshot(ctx, t.snapshot)
	if err != nil {
		return nil, err
	}
	// Loads wait for the snapshot, and the build for it and the checkpoint before it (Prepare): say
	// so when that is long enough to show in freshness.
	paused, level := st.Wait+st.Checkpoint+st.Copy+st.Reopen, slog.LevelInfo
	if paused+st.Prepare > time.Second {
		level = slog.LevelWarn // the build waits for all of it
	}
	t.log.Log(ctx, level, "RAW snapshot for dbt", "file", t.snapshot, "bytes", st.Bytes, "written", st.Written, "loads_paused_s", paused.Seconds(),
		"prepare_s", st.Prepare.Seconds(),
		"wait_s", st.Wait.Seconds(), "checkpoint_s", st.Checkpoint.Seconds(), "copy_s", st.Copy.Seconds(),
		"reopened", st.Reopened, "reopen_s", st.Reopen.Seconds(), "trimmed", st.Trimmed, "trim_s", st.Trim.Seconds())
	resume, err := t.wh.LendModels(ctx)
	if err != nil {
		return nil, err
	}
	return func() {
		if err := resume(context.WithoutCancel(ctx)); err != nil {
			t.log.Error("attach the models file after dbt", "err", err)
		}
	}, nil
}
