package main

import (
	"context"
	"fmt"
	"os"
)

func init() {
	register(command{name: "up", summary: "run the local stack (what `make run` runs); Ctrl-C stops it", run: runUp})
}

// runUp brings the stack up in one process: the schema, a first data set when the database is
// empty, then continuous activity with its progress.
func runUp(ctx context.Context, args []string) error {
	fs := newFlags("up", "[--config config.yaml]")
	path := fs.String("config", "", "generator configuration (default: ./config.yaml when present)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadGeneratorConfig(*path, 0, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	pool, err := openMigrated(ctx, 8)
	if err != nil {
		return err
	}
	defer pool.Close()

	var customers int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&customers); err != nil {
		return fmt.Errorf("count customers: %w", err)
	}
	if customers == 0 {
		fmt.Fprintln(os.Stderr, "empty database: loading the configured data set first")
		if err := bulkLoad(ctx, pool, cfg); err != nil {
			return err
		}
	}
	return generateContinuously(ctx, pool, cfg)
}
