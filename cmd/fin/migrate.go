package main

import (
	"context"

	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/localpg"
)

func init() {
	register(command{name: "migrate", summary: "apply the embedded schema migrations to Postgres", run: runMigrate})
}

func runMigrate(ctx context.Context, args []string) error {
	fs := newFlags("migrate", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pool, err := openMigrated(ctx, 0)
	if err != nil {
		return err
	}
	pool.Close()
	return nil
}

// openMigrated connects to the configured database and brings its schema up to date, as every
// command that touches Postgres does at start-up.
func openMigrated(ctx context.Context, maxConns int) (*pgxpool.Pool, error) {
	url := localpg.URL()
	pool, err := database.Open(ctx, url, maxConns)
	if err != nil {
		return nil, err
	}
	applied, err := database.Migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	for _, name := range applied {
		slog.Info("migration applied", "migration", name, "database", database.Redact(url))
	}
	if len(applied) == 0 {
		slog.Debug("schema is current", "database", database.Redact(url))
	}
	return pool, nil
}
