package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
	"github.com/fin-orchestrator/fin-orchestrator/shared/stack"
	"github.com/fin-orchestrator/fin-orchestrator/shared/statedir"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

func init() {
	register(command{name: "api", summary: "serve the banking REST API (127.0.0.1:8000, API_ADDR overrides)", run: runAPI,
		godebug: sysmonAwake})
}

func runAPI(ctx context.Context, args []string) error {
	fs := newFlags("api", "[-addr host:port] [-warehouse file.duckdb]")
	addr := fs.String("addr", envOr("API_ADDR", "127.0.0.1:8000"), "address to listen on")
	conns := fs.Int("conns", 32, "database connections in the pool")
	procs := fs.Int("procs", 0, "threads running Go code at once (GOMAXPROCS); 0: the GOMAXPROCS environment variable, else half of Go's default when the database host is this one (a socket, localhost, loopback), else Go's default")
	pipeline := fs.String("account-pipeline", envOr("FIN_API_ACCOUNT_PIPELINE", "2"), "GET /accounts/{id} batches sent through one connection in pipeline mode before the first is answered (0: off, each GET its own query); default FIN_API_ACCOUNT_PIPELINE, else 2")
	wh := fs.String("warehouse", duckdb.DefaultPath(), "DuckDB warehouse file the history endpoints read (opened per request, read-only)")
	tplPath := fs.String("template", "template.yaml", "the SAM template whose ApiFunction settings and schedules (housekeeping) to run")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := errors.Join(atLeast(fs, "conns", *conns, 1), atLeast(fs, "procs", *procs, 0)); err != nil {
		return err
	}
	// The server's live heap is a few MB and it allocates per request, so at the default GOGC
	// it collects many times a second (~3% of its CPU under load); 400 trades a few MB for a
	// quarter of that. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	tpl, _, err := stack.LoadAPITemplate(*tplPath, devSecretPath(), nil)
	if err != nil {
		return err
	}
	pool, err := openMigrated(ctx, *conns)
	if err != nil {
		return err
	}
	defer pool.Close()
	setProcs(*procs, pool.Config().ConnConfig.Host)
	slog.Info("api threads", "gomaxprocs", runtime.GOMAXPROCS(0), "cpus", runtime.NumCPU())
	// The api function as its Lambda and `fin up` build it, served over HTTP directly, with the
	// template's schedules for it (housekeeping: purging expired idempotency keys).
	env := stack.FunctionEnv(tpl, stack.APIFunction, settings.API, nil, map[string]string{"FIN_API_ACCOUNT_PIPELINE": *pipeline})
	fn, err := api.NewFunction(ctx, env, api.Deps{Pool: pool, History: history.New(duckdb.File{Path: *wh}), DevSecretPath: devSecretPath()})
	if err != nil {
		return err
	}
	scheduled := lambdalocal.TemplateFunction(tpl, stack.APIFunction, fn.Handler())
	lambdalocal.RunSchedules(ctx, tpl, stack.APIFunction, scheduled, "", nil, lambdalocal.RealClock, func(name string, f func() error) {
		go func() {
			if err := f(); err != nil {
				slog.Error("schedule stopped", "schedule", name, "err", err)
			}
		}()
	})
	return api.Serve(ctx, fn.App, *addr)
}

// setProcs sets GOMAXPROCS to procs when positive, else, unless the GOMAXPROCS environment
// variable says, to localDatabaseProcs. Only when asked or when the database is local: Go's own
// default follows the container's CPU limit and keeps following it, until GOMAXPROCS is set.
func setProcs(procs int, dbHost string) {
	if procs <= 0 && os.Getenv("GOMAXPROCS") == "" {
		procs = localDatabaseProcs(dbHost, runtime.GOMAXPROCS(0))
	}
	if procs > 0 {
		runtime.GOMAXPROCS(procs)
	}
}

// localDatabaseProcs is how many threads the server runs Go code on when neither -procs nor
// GOMAXPROCS says and the database host names this machine (a socket path, localhost or a
// loopback address): half of Go's default (procs), leaving the rest to Postgres. 0, for any
// other host, leaves Go's default alone. Only the host string decides: a connection pooler or
// proxy on localhost counts as local. A request is mostly socket reads and writes; with a
// thread per core, the scheduler's idle threads spin looking for work and pass goroutines
// between cores, CPU the database on those same cores then lacks (measured on 2 cores: 40 -> 31
// us of the server's CPU per GET /accounts/{id}, 25k -> 32k requests/s).
func localDatabaseProcs(dbHost string, procs int) int {
	local := dbHost == "" || strings.HasPrefix(dbHost, "/") || dbHost == "localhost"
	if ip := net.ParseIP(dbHost); ip != nil && ip.IsLoopback() {
		local = true
	}
	if !local {
		return 0
	}
	return max(1, procs/2)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// devSecretPath is where the local API and `fin token` keep the development signing secret:
// FIN_JWT_SECRET_FILE, else the machine-wide file beside the Postgres password (root), else the
// checkout's git-ignored .fin folder (a user who cannot write /var/lib).
func devSecretPath() string {
	if p := os.Getenv("FIN_JWT_SECRET_FILE"); p != "" {
		return p
	}
	if _, err := os.Stat(api.DefaultDevSecretPath); err == nil {
		return api.DefaultDevSecretPath
	}
	if f, err := os.CreateTemp(filepath.Dir(api.DefaultDevSecretPath), ".probe-*"); err == nil {
		f.Close()
		os.Remove(f.Name())
		return api.DefaultDevSecretPath
	}
	return filepath.Join(statedir.Dir(), "jwt-dev-secret")
}
