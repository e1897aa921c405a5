package dbtrun

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

// workerScript is the warm dbt worker (see worker.py): Run keeps one per project and work
// directory, so a scheduled build does not pay Python's and dbt's start-up (2-3 s of CPU) again.
//
//go:embed worker.py
var workerScript []byte

// workerFile is where the script is written in the work directory (the one writable place in
// Lambda), so the worker's command line stays short.
const workerFile = "dbt-worker.py"

// workerRuns is how many builds one worker serves before it is replaced: cheap insurance against
// state dbt might accumulate in a long-lived process (one start-up per workerRuns builds).
const workerRuns = 100

// dbtEnv is set for every dbt run, in a fresh process or in a worker.
var dbtEnv = []string{"DBT_SEND_ANONYMOUS_USAGE_STATS=false", "DBT_USE_COLORS=false"}

// python returns the interpreter a warm worker runs on, or "" to start a fresh dbt process per
// run: Config.Python, else the python beside the dbt executable (a virtualenv's bin/).
func (c Config) python() string {
	if c.ProcessPerRun {
		return ""
	}
	if c.Python != "" {
		return c.Python
	}
	path, err := exec.LookPath(c.dbt())
	if err != nil {
		return ""
	}
	py := filepath.Join(filepath.Dir(path), "python")
	if fi, err := os.Stat(py); err != nil || fi.IsDir() {
		return ""
	}
	return py
}

// worker is one warm dbt process and the pipes to it.
type worker struct {
	run     sync.Mutex // one dbt command at a time: dbtRunner is not safe for concurrent use
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies *bufio.Reader
	out     *switchWriter
	exited  chan struct{}
	waitErr error // set before exited is closed
	runs    atomic.Int32
}

var workers = struct {
	sync.Mutex
	m map[string]*worker
}{m: map[string]*worker{}}

// workerFor returns the live worker for cfg, starting one when there is none or the last one
// died (a crash, an out-of-memory kill, a cancelled run).
func workerFor(cfg Config, python string) (*worker, error) {
	key := strings.Join([]string{python, cfg.ProjectDir, cfg.workDir()}, "\x00")
	workers.Lock()
	defer workers.Unlock()
	if w := workers.m[key]; w != nil {
		if w.alive() && w.runs.Load() < workerRuns {
			return w, nil
		}
		go w.stop()
	}
	w, err := startWorker(cfg, python)
	if err != nil {
		return nil, err
	}
	workers.m[key] = w
	return w, nil
}

// niced is name with args under nice(1) at c.Nice, when set and nice is installed. nice execs
// the program, so the process (and the pid a deadline kills) is dbt's own.
func (c Config) niced(name string, args ...string) (string, []string) {
	if c.Nice <= 0 {
		return name, args
	}
	nice, err := exec.LookPath("nice")
	if err != nil {
		return name, args
	}
	return nice, append([]string{"-n", strconv.Itoa(c.Nice), name}, args...)
}

func startWorker(cfg Config, python string) (*worker, error) {
	script := filepath.Join(cfg.workDir(), workerFile)
	if err := os.MkdirAll(cfg.workDir(), 0o755); err != nil {
		return nil, fmt.Errorf("dbt work dir: %w", err)
	}
	if err := os.WriteFile(script, workerScript, 0o644); err != nil {
		return nil, fmt.Errorf("write the dbt worker: %w", err)
	}
	replyR, replyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("dbt worker pipe: %w", err)
	}
	w := &worker{out: &switchWriter{}, replies: bufio.NewReader(replyR), exited: make(chan struct{})}
	name, argv := cfg.niced(python, "-u", script)
	w.cmd = exec.Command(name, argv...)
	dieWithParent(w.cmd)
	w.cmd.Dir = cfg.ProjectDir
	w.cmd.Env = append(settings.Environ(), dbtEnv...)
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	w.cmd.ExtraFiles = []*os.File{replyW} // fd 3 in the worker
	w.cmd.WaitDelay = 10 * time.Second
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		replyR.Close()
		replyW.Close()
		return nil, fmt.Errorf("dbt worker stdin: %w", err)
	}
	if err := w.cmd.Start(); err != nil {
		replyR.Close()
		replyW.Close()
		return nil, fmt.Errorf("start the dbt worker %s: %w", python, err)
	}
	replyW.Close() // the worker holds the only write end: its exit ends our reads
	go func() {
		w.waitErr = w.cmd.Wait()
		replyR.Close()
		close(w.exited)
	}()
	return w, nil
}

func (w *worker) alive() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

func (w *worker) kill() {
	_ = w.cmd.Process.Kill()
	<-w.exited
}

// stop asks the worker to finish (stdin closed) and kills it if it has not within a few seconds.
func (w *worker) stop() {
	// After the build in progress, if any: a worker retired after workerRuns may still be in use.
	w.run.Lock()
	defer w.run.Unlock()
	w.stdin.Close()
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		w.kill()
	}
}

// invoke runs one dbt command in the worker with env (NAME=value entries, the whole environment
// the command sees), its output going to out; dbt's run results go to the file results. It returns nil when dbt succeeded; otherwise an
// error that says why (a failed node is named by run_results.json, not here).
func (w *worker) invoke(ctx context.Context, args, env []string, results string, out io.Writer) error {
	w.run.Lock()
	defer w.run.Unlock()
	w.runs.Add(1)
	w.out.set(out)
	defer w.out.set(nil)

	vars := make(map[string]string, len(env))
	for _, kv := range env {
		if name, value, ok := strings.Cut(kv, "="); ok {
			vars[name] = value // later entries win, as in exec.Cmd.Env
		}
	}
	req, err := json.Marshal(map[string]any{"args": args, "env": vars, "run_results": results})
	if err != nil {
		return fmt.Errorf("encode the dbt request: %w", err)
	}
	if _, err := w.stdin.Write(append(req, '\n')); err != nil {
		w.kill()
		return fmt.Errorf("send the build to the dbt worker (it will be restarted): %w", err)
	}
	type reply struct {
		line string
		err  error
	}
	got := make(chan reply, 1)
	go func() {
		line, err := w.replies.ReadString('\n')
		got <- reply{line, err}
	}()
	select {
	case <-ctx.Done():
		// dbt cannot be interrupted in-process: end the worker, the next run starts another.
		w.kill()
		<-got
		return fmt.Errorf("dbt worker stopped: %w", ctx.Err())
	case r := <-got:
		if r.err != nil {
			<-w.exited
			return fmt.Errorf("the dbt worker ended during the run (%v); the next run starts another", w.waitErr)
		}
		var res struct {
			Success bool   `json:"success"`
			Error   string `json:"error"`
			Timings string `json:"timings"`
		}
		if err := json.Unmarshal([]byte(r.line), &res); err != nil {
			w.kill()
			return fmt.Errorf("dbt worker reply %q: %w", r.line, err)
		}
		if res.Timings != "" && out != nil {
			fmt.Fprintf(out, "fin.dbt_worker: %s\n", res.Timings)
		}
		switch {
		case res.Success:
			return nil
		case res.Error != "":
			return errors.New(res.Error)
		default:
			return errors.New("dbt reported failure")
		}
	}
}

// StopWorkers ends the warm dbt workers Run started (they also end on their own when this
// process exits). Call it on shutdown, or in tests that must leave no process behind.
func StopWorkers() {
	workers.Lock()
	all := workers.m
	workers.m = map[string]*worker{}
	workers.Unlock()
	for _, w := range all {
		w.stop()
	}
}

// switchWriter forwards a worker's output to the writer of the run in progress.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		_, _ = s.w.Write(p)
	}
	return len(p), nil
}
