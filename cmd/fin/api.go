package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

func init() {
	register(command{name: "api", summary: "serve the banking REST API (127.0.0.1:8000, API_ADDR overrides)", run: runAPI})
}

func runAPI(ctx context.Context, args []string) error {
	fs := newFlags("api", "[-addr host:port] [-warehouse file.duckdb]")
	addr := fs.String("addr", envOr("API_ADDR", "127.0.0.1:8000"), "address to listen on")
	conns := fs.Int("conns", 32, "database connections in the pool")
	reads := fs.Int("account-reads", 1, "GET /accounts/{id} queries in flight before further GETs are batched into one query (-1: never batch)")
	wh := fs.String("warehouse", duckdb.DefaultPath(), "DuckDB warehouse file the history endpoints read (opened per request, read-only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// The server's live heap is a few MB and it allocates per request, so at the default GOGC
	// it collects many times a second (~3% of its CPU under load); 400 trades a few MB for a
	// quarter of that. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	auth, err := api.AuthConfigFromEnv(devSecretPath())
	if err != nil {
		return err
	}
	pool, err := openMigrated(ctx, *conns)
	if err != nil {
		return err
	}
	defer pool.Close()
	app, err := api.New(ctx, api.Config{Pool: pool, Auth: auth, History: history.New(duckdb.File{Path: *wh}),
		AccountReadsInFlight: *reads})
	if err != nil {
		return err
	}
	go api.PurgeExpiredKeys(ctx, pool, time.Hour)
	return api.Serve(ctx, app, *addr)
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
	return filepath.Join(envOr("FIN_STATE_DIR", ".fin"), "jwt-dev-secret")
}
