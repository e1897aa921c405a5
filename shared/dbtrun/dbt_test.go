package dbtrun

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// repoRoot is the repository this package sits in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// venvTool returns a tool of the project's venv (scripts/venv.sh makes it). Without it the test
// is skipped, unless FIN_REQUIRE_DBT is set, as the dbt suite of make test does.
func venvTool(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), ".venv", "bin", name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("FIN_REQUIRE_DBT") != "" {
			t.Fatalf("%s is missing: run bash scripts/venv.sh", p)
		}
		t.Skipf("%s is missing (bash scripts/venv.sh makes it; scripts/test.d/40-dbt.sh runs this test)", p)
	}
	return p
}

// warehouse writes a DuckDB file with the fixture RAW tables ("scenario" or "broken").
func warehouse(t *testing.T, fixture string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warehouse.duckdb")
	cmd := exec.Command(venvTool(t, "python"), filepath.Join(repoRoot(t), "scripts", "dbt", "raw_events.py"), "duckdb", path, fixture)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("write %s fixture: %v\n%s", fixture, err, out)
	}
	return path
}

func countModels(t *testing.T) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(repoRoot(t), "dbt", "models"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".sql") {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func invoke(t *testing.T, warehousePath, detail string) (Summary, error) {
	t.Helper()
	ev := events.EventBridgeEvent{ID: "test", DetailType: "Scheduled Event", Source: "aws.events", Detail: json.RawMessage(detail)}
	payload, _ := json.Marshal(ev)
	return invokePayload(t, warehousePath, payload)
}

func invokePayload(t *testing.T, warehousePath string, payload []byte) (Summary, error) {
	t.Helper()
	return invokeWith(t, warehousePath, payload, func(*Config) {})
}

// invokeWith runs the handler on payload with the test's Config, changed by configure.
func invokeWith(t *testing.T, warehousePath string, payload []byte, configure func(*Config)) (Summary, error) {
	t.Helper()
	t.Cleanup(StopWorkers)
	cfg := Config{
		DBT:        venvTool(t, "dbt"),
		ProjectDir: filepath.Join(repoRoot(t), "dbt"),
		Target:     "duckdb",
		WorkDir:    t.TempDir(),
		Env:        []string{"WAREHOUSE_PATH=" + warehousePath},
		Lock:       FileLock{Path: warehousePath + ".lock"},
	}
	configure(&cfg)
	return Handler(cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))(context.Background(), payload)
}

func TestHandlerWithDBT(t *testing.T) {
	path := warehouse(t, "scenario")

	sum, err := invoke(t, path, `{}`)
	if err != nil {
		t.Fatalf("dbt build on good data failed: %v", err)
	}
	if want := countModels(t); sum.ModelsBuilt != want || sum.TestsFailed != 0 || sum.TestsPassed == 0 {
		t.Errorf("good data: built %d of %d models, %d tests passed, %d failed; want all built, none failed",
			sum.ModelsBuilt, want, sum.TestsPassed, sum.TestsFailed)
	}
	if sum.InvocationID == "" || sum.ElapsedSeconds <= 0 {
		t.Errorf("summary lacks dbt's invocation id or elapsed time: %+v", sum)
	}

	sum, err = invoke(t, path, `{"select":"stg_customers_changes"}`)
	if err != nil {
		t.Fatalf("dbt build --select stg_customers_changes: %v", err)
	}
	if sum.ModelsBuilt != 1 || sum.Selector != "stg_customers_changes" {
		t.Errorf("a selector of one model built %d models (selector %q), want 1", sum.ModelsBuilt, sum.Selector)
	}
}

// The first build requests on a new warehouse name accounts before any build made stg_customers,
// which accounts' relationship test reads: the batch still builds, by building everything. When
// the runner can tell the warehouse lacks models (Config.Missing, locally) it builds everything
// at once and no build fails; without (AWS) the selected build fails first. Once the warehouse
// holds every model, a batch builds only what is downstream of its tables.
func TestFirstLoadBuildOnNewWarehouseBuildsEverything(t *testing.T) {
	batch := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: `{"tables":["accounts"]}`}}}
	payload, _ := json.Marshal(batch)
	for _, c := range []struct {
		name         string
		checked      bool
		failedBuilds int
	}{
		{"runner knows the models the warehouse lacks", true, 0},
		{"runner cannot tell", false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := warehouse(t, "scenario")
			var metrics strings.Builder
			configure := func(cfg *Config) {
				cfg.EMF = &metrics
				if c.checked {
					cfg.Missing = func(context.Context) ([]string, error) { return missingIn(t, path) }
				}
			}
			sum, err := invokeWith(t, path, payload, configure)
			if err != nil {
				t.Fatalf("first build request on a new warehouse failed: %v", err)
			}
			if want := countModels(t); sum.ModelsBuilt != want || sum.TestsFailed != 0 {
				t.Errorf("built %d of %d models with %d failed tests; want everything built and passing", sum.ModelsBuilt, want, sum.TestsFailed)
			}
			if got := failedBuilds(t, metrics.String()); got != c.failedBuilds {
				t.Errorf("%d failed builds before gold was built, want %d (metrics %s)", got, c.failedBuilds, metrics.String())
			}
			if !c.checked {
				return
			}
			if sum, err = invokeWith(t, path, payload, configure); err != nil {
				t.Fatalf("second build request: %v", err)
			}
			if sum.ModelsBuilt == 0 || sum.ModelsBuilt >= countModels(t) || sum.TestsFailed != 0 {
				t.Errorf("a request for accounts on a built warehouse built %d of %d models (%d tests failed), want only those downstream of accounts",
					sum.ModelsBuilt, countModels(t), sum.TestsFailed)
			}
		})
	}
}

// missingIn names the project's models the DuckDB warehouse at path lacks, read from the file as
// the stack reads its models file.
func missingIn(t *testing.T, path string) ([]string, error) {
	t.Helper()
	list := "import duckdb, sys; print(' '.join(r[0] for r in duckdb.connect(sys.argv[1], read_only=True).execute(" +
		"\"select distinct table_name from information_schema.tables where table_schema <> 'raw'\").fetchall()))"
	out, err := exec.Command(venvTool(t, "python"), "-c", list, path).Output()
	if err != nil {
		return nil, err
	}
	want, err := ProjectModels(filepath.Join(repoRoot(t), "dbt"))
	if err != nil {
		return nil, err
	}
	have := strings.Fields(string(out))
	return slices.DeleteFunc(want, func(m string) bool { return slices.Contains(have, m) }), nil
}

// failedBuilds counts the builds whose metrics (one EMF line each) report a failed node.
func failedBuilds(t *testing.T, emf string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(emf), "\n") {
		var m struct{ DbtFailures float64 }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		if m.DbtFailures > 0 {
			n++
		}
	}
	return n
}

func TestHandlerWithDBTFailsOnFailingTest(t *testing.T) {
	sum, err := invoke(t, warehouse(t, "broken"), `{}`)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("dbt build on purpose-broken money data: err = %v, want ErrFailed", err)
	}
	if sum.TestsFailed == 0 {
		t.Fatalf("the invocation failed but the summary counts no failed test: %+v", sum)
	}
	// The model's column checks run as one node; its message names the column and the check.
	var named bool
	for _, f := range sum.Failures {
		named = named || strings.Contains(f.Node, "column_checks_stg_transactions_changes") &&
			strings.Contains(f.Message, "amount not_null: 1 row")
	}
	if !named || !strings.Contains(err.Error(), "column_checks_stg_transactions_changes") {
		t.Errorf("the amount that is not exact money should fail column_checks_stg_transactions_changes with \"amount not_null: 1 row\"; failures %+v, error %v", sum.Failures, err)
	}
}

func TestRunWithoutDBT(t *testing.T) {
	_, err := Run(context.Background(), Config{DBT: filepath.Join(t.TempDir(), "no-dbt"), ProjectDir: t.TempDir()}, Request{})
	if err == nil || errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "run_results.json") {
		t.Errorf("Run with a missing dbt: err = %v, want an error saying dbt wrote no run_results.json", err)
	}
}

// workerPID is the process id of the warm worker that serves cfg.
func workerPID(t *testing.T, cfg Config) int {
	t.Helper()
	w, err := workerFor(cfg, cfg.python())
	if err != nil {
		t.Fatal(err)
	}
	return w.cmd.Process.Pid
}

// writable fails the test unless another process can open the DuckDB file for writing now.
func writable(t *testing.T, path string) {
	t.Helper()
	probe := "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('create or replace table main.probe as select 1 as x')"
	if out, err := exec.Command(venvTool(t, "python"), "-c", probe, path).CombinedOutput(); err != nil {
		t.Fatalf("after a run, another process cannot write %s (the worker still holds it?): %v\n%s", path, err, out)
	}
}

// One warm worker serves every run of a work dir: each run gets its own environment (here, a
// different warehouse), leaves the DuckDB file free for the loader between runs, and a worker
// that died is replaced by the next run.
func TestWarmWorker(t *testing.T) {
	t.Cleanup(StopWorkers)
	first, second := warehouse(t, "scenario"), warehouse(t, "scenario")
	cfg := Config{DBT: venvTool(t, "dbt"), ProjectDir: filepath.Join(repoRoot(t), "dbt"), Target: "duckdb", WorkDir: t.TempDir()}
	if cfg.python() == "" {
		t.Fatalf("no python beside %s: Run would start a process per run", cfg.DBT)
	}
	build := func(path string) {
		t.Helper()
		run := cfg
		run.Env = []string{"WAREHOUSE_PATH=" + path}
		sum, err := Run(context.Background(), run, Request{Select: "stg_customers_changes"})
		if err != nil {
			t.Fatalf("dbt build on %s: %v", path, err)
		}
		if sum.ModelsBuilt != 1 {
			t.Fatalf("dbt build on %s built %d models, want 1", path, sum.ModelsBuilt)
		}
		writable(t, path)
	}

	build(first)
	pid := workerPID(t, cfg)
	build(second)
	if again := workerPID(t, cfg); again != pid {
		t.Errorf("the second run started worker %d instead of reusing %d", again, pid)
	}

	w, err := workerFor(cfg, cfg.python())
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-w.exited
	build(first)
	if restarted := workerPID(t, cfg); restarted == pid {
		t.Errorf("after the worker was killed, the next run still reports worker %d", pid)
	}
}

// The warm worker parses the project once and reuses it for the next builds, and parses again
// as soon as a file dbt reads changes: a model added between two builds is built by the second;
// a file beside the project's folders changes nothing.
func TestWorkerReusesTheParsedProjectUntilItChanges(t *testing.T) {
	t.Cleanup(StopWorkers)
	project := filepath.Join(t.TempDir(), "dbt")
	if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot(t), "dbt"), project).CombinedOutput(); err != nil {
		t.Fatalf("copy the dbt project: %v\n%s", err, out)
	}
	for _, d := range []string{"target", "logs"} {
		os.RemoveAll(filepath.Join(project, d))
	}
	path := warehouse(t, "scenario")
	cfg := Config{DBT: venvTool(t, "dbt"), ProjectDir: project, Target: "duckdb", WorkDir: t.TempDir(),
		Env: []string{"WAREHOUSE_PATH=" + path}, Lock: FileLock{Path: path + ".lock"}}
	if cfg.python() == "" {
		t.Fatal("no warm worker: the venv's python was not found beside dbt")
	}
	build := func(step string, req ...Request) (Summary, string) {
		t.Helper()
		var out strings.Builder
		cfg.Output = &out
		sum, err := Run(context.Background(), cfg, append(req, Request{})[0])
		if err != nil {
			t.Fatalf("%s: %v\n%s", step, err, out.String())
		}
		return sum, out.String()
	}
	models := countModels(t)
	const parsing = "fin.dbt_worker: parsing the project"
	if sum, out := build("first build"); sum.ModelsBuilt != models || !strings.Contains(out, parsing+" (no manifest yet)") {
		t.Fatalf("first build built %d of %d models; the worker said it parsed the project: %t", sum.ModelsBuilt, models, strings.Contains(out, parsing))
	}
	sum, out := build("second build, project unchanged")
	if sum.ModelsBuilt != models || strings.Contains(out, parsing) {
		t.Fatalf("second build: %d of %d models; it parsed the project again: %t", sum.ModelsBuilt, models, strings.Contains(out, parsing))
	}
	// Where the build's time went, split at dbt's run, its hooks and the close of DuckDB, and
	// what the worker's trims saved: the second build renders the templates the first compiled,
	// and drops the debug events nobody logs (Trims in worker.py), each before its fields were
	// converted to a protobuf message: all of them, as nothing reads a dropped event; the
	// nodes' contexts took their macros from one merged dict, and wrapped them in one loop.
	timings := regexp.MustCompile(`fin\.dbt_worker: request [0-9.]+ s: project .*, before its run .*, set-up .*, nodes .*, on-run-end hooks .*, close [0-9.]+ s \(cpu [0-9.]+\); templates compiled ([0-9]+) \(reused ([0-9]+)\), debug events skipped ([0-9]+) \(never parsed ([0-9]+)\), macro namespaces merged ([0-9]+), macros wrapped ([0-9]+)\n`).FindStringSubmatch(out)
	if timings == nil {
		t.Fatalf("the build's output has no line of its timings:\n%s", out)
	}
	if timings[2] == "0" || timings[3] == "0" || timings[4] != timings[3] || timings[5] == "0" || timings[6] == "0" {
		t.Errorf("second build: %s templates reused, %s debug events skipped, %s of them never parsed, %s macro namespaces merged, "+
			"%s macros wrapped; want the first two and the last two above 0 and the third the second:\n%s",
			timings[2], timings[3], timings[4], timings[5], timings[6], timings[0])
	}
	// The selection is the build's, not the project's: the same manifest serves it.
	sum, out = build("a build selected from loads", Request{Select: "source:raw.accounts+", IndirectSelection: "eager", FullRefresh: true})
	if sum.ModelsBuilt == 0 || sum.ModelsBuilt >= models || strings.Contains(out, parsing) {
		t.Fatalf("selected build: %d of %d models; it parsed the project again: %t", sum.ModelsBuilt, models, strings.Contains(out, parsing))
	}
	if err := os.WriteFile(filepath.Join(project, "models", "marts", "zz_probe.sql"), []byte("select 1 as one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum, out = build("third build, a model added"); sum.ModelsBuilt != models+1 || !strings.Contains(out, parsing+" (changed: files") || !strings.Contains(out, "zz_probe.sql") {
		t.Fatalf("after a model was added the build built %d models, want %d (parsed again, naming the file: %t)", sum.ModelsBuilt, models+1, strings.Contains(out, "zz_probe.sql"))
	}
	// A model edited between builds is built from its new text, not from the template compiled
	// from the old one: a broken edit fails the build, the edit undone passes again.
	probe := filepath.Join(project, "models", "marts", "zz_probe.sql")
	if err := os.WriteFile(probe, []byte("select one from zz_no_such_relation\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var edited strings.Builder
	cfg.Output = &edited
	if _, err := Run(context.Background(), cfg, Request{Select: "zz_probe"}); err == nil || !strings.Contains(edited.String(), "zz_no_such_relation") {
		t.Fatalf("a build of a model edited to read a missing relation: err = %v, want a failure naming it:\n%s", err, edited.String())
	}
	if err := os.WriteFile(probe, []byte("select 1 as one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum, out = build("a build after the edit was undone"); sum.ModelsBuilt != models+1 {
		t.Fatalf("after the edit was undone the build built %d models, want %d:\n%s", sum.ModelsBuilt, models+1, out)
	}
	// A view whose definition changed is replaced, although DuckDB's views are otherwise left as
	// they are (dbt/macros/views.sql): a table reading the new column builds.
	if err := os.WriteFile(probe, []byte("select 1 as one, 2 as two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reader := filepath.Join(project, "models", "marts", "zz_reader.sql")
	if err := os.WriteFile(reader, []byte("{{ config(materialized='table') }}\nselect two from {{ ref('zz_probe') }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum, out = build("a build after the view changed"); sum.ModelsBuilt != models+2 {
		t.Fatalf("after the view zz_probe changed the build built %d models, want %d:\n%s", sum.ModelsBuilt, models+2, out)
	}
	models += 2 // zz_probe and zz_reader stay
	// Only what dbt reads counts: files beside the project's folders (dbt's target and logs
	// when they are kept there, notes) leave the manifest as it is, and a model anywhere under
	// models/ is read, even in a folder named like one that is not.
	for _, f := range []string{"target/run_results.json", "logs/dbt.log", "notes/todo.md"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(project, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(project, f), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if sum, out = build("fourth build, files dbt does not read added"); sum.ModelsBuilt != models || strings.Contains(out, parsing) {
		t.Fatalf("after files dbt does not read were added: %d of %d models; it parsed the project again: %t", sum.ModelsBuilt, models, strings.Contains(out, parsing))
	}
	if err := os.MkdirAll(filepath.Join(project, "models", "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "models", "logs", "zz_logs.sql"), []byte("select 2 as two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum, out = build("fifth build, a model in models/logs"); sum.ModelsBuilt != models+1 || !strings.Contains(out, "zz_logs.sql") {
		t.Fatalf("after a model was added in models/logs the build built %d models, want %d (parsed again, naming it: %t)", sum.ModelsBuilt, models+1, strings.Contains(out, "zz_logs.sql"))
	}
}

// The worker's trims (worker.py, Trims) change nothing dbt shows: with dbt's debug log on, every
// debug event still reaches it (the queries), and secrets are scrubbed from it with the values
// of each request's own environment, not the first request's. Also: DuckDB's views are left as
// they are when unchanged (dbt/macros/views.sql).
func TestWorkerTrimsKeepDebugLogAndScrubbing(t *testing.T) {
	t.Cleanup(StopWorkers)
	work := t.TempDir()
	cfg := Config{DBT: venvTool(t, "dbt"), ProjectDir: filepath.Join(repoRoot(t), "dbt"), Target: "duckdb", WorkDir: work}
	if cfg.python() == "" {
		t.Fatalf("no python beside %s: Run would start a process per run", cfg.DBT)
	}
	w, err := workerFor(cfg, cfg.python())
	if err != nil {
		t.Fatal(err)
	}
	// dim_customers and what it reads (and only tests of those): its second build finds the view
	// unchanged.
	args, err := cfg.Args(Request{Select: "+dim_customers", IndirectSelection: "cautious"})
	if err != nil {
		t.Fatal(err)
	}
	dbtLog := filepath.Join(work, "logs", "dbt.log")
	path := warehouse(t, "scenario")
	for i, secret := range []string{"first-secret-7f3a", "second-secret-91c2"} {
		os.Remove(dbtLog)
		env := append(cfg.environ(), "WAREHOUSE_PATH="+path, "DBT_LOG_LEVEL_FILE=debug",
			"DBT_ENV_SECRET_FIN_PROBE="+secret)
		var out strings.Builder
		// dbt writes its arguments, the vars among them, to the debug log.
		if err := w.invoke(context.Background(), append(args, "--vars", "{probe: "+secret+"}"), env,
			filepath.Join(work, "target", "run_results.json"), &out); err != nil {
			t.Fatalf("build %d: %v\n%s", i+1, err, out.String())
		}
		raw, err := os.ReadFile(dbtLog)
		if err != nil {
			t.Fatalf("build %d with DBT_LOG_LEVEL_FILE=debug wrote no dbt log: %v", i+1, err)
		}
		text := string(raw)
		if !strings.Contains(text, "On model.fin_orchestrator.stg_customers_changes:") || !strings.Contains(text, "SQL status:") {
			t.Errorf("build %d: dbt's debug log lacks the model's queries (debug events dropped?)", i+1)
		}
		if strings.Contains(text, secret) || !strings.Contains(text, "*****") {
			t.Errorf("build %d: the secret of its own environment is not scrubbed from dbt's log (holds it: %t)", i+1, strings.Contains(text, secret))
		}
		if !strings.Contains(out.String(), "debug events skipped 0 (never parsed 0), ") {
			t.Errorf("build %d skipped debug events although dbt's log takes them:\n%s", i+1, out.String())
		}
		// dbt/macros/views.sql: the first build creates the view, the second leaves it as it is.
		if kept := strings.Contains(text, `View "warehouse"."gold"."dim_customers" is unchanged`); kept != (i == 1) {
			t.Errorf("build %d: the view gold.dim_customers was left as it is: %t, want %t", i+1, kept, i == 1)
		}
	}
}

// The worker's macro wrappers (worker.py, Trims._macro_wrappers) are dbt's own: for a node of the
// project, of dbt's package and of the adapter's, the namespace the trim builds files the same
// names in the same places, each wrapper with the same attributes (testdata/macro_wrappers.py).
func TestWorkerMacroWrappersAreDbts(t *testing.T) {
	root := repoRoot(t)
	script := filepath.Join(root, "shared", "dbtrun", "testdata", "macro_wrappers.py")
	cmd := exec.Command(venvTool(t, "python"), script, filepath.Join(root, "shared", "dbtrun"), filepath.Join(root, "dbt"), t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the trimmed namespaces differ from dbt's: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "differences 0") {
		t.Fatalf("no comparison reported:\n%s", out)
	}
}
