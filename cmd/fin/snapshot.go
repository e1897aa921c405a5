package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
)

func init() {
	register(command{name: "snapshot", summary: "ask the capture (Go or Debezium) for an online incremental snapshot", run: runSnapshot})
}

func runSnapshot(ctx context.Context, args []string) error {
	fs := newFlags("snapshot", "[--table public.accounts[,public.customers]]")
	tables := fs.String("table", strings.Join(capture.DefaultTables, ","), "tables to snapshot again, schema-qualified, comma-separated")
	signal := fs.String("signal-table", "public.debezium_signal", "Debezium's signal.data.collection")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	names, err := snapshotTables(*tables)
	if err != nil {
		return err
	}
	pool, err := openMigrated(ctx, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	id, err := capture.RequestSnapshot(ctx, pool, *signal, names)
	if err != nil {
		return err
	}
	fmt.Printf("incremental snapshot requested: signal %s, tables %s\n", id, strings.Join(names, ", "))
	fmt.Println("the running capture takes it from its slot (log: \"incremental snapshot requested\", then \"snapshot recorded in the destination manifest\")")
	return nil
}

// snapshotTables reads --table: captured tables, comma-separated, "public." optional.
func snapshotTables(arg string) ([]string, error) {
	var names []string
	for _, t := range strings.Split(arg, ",") {
		t = strings.TrimSpace(t)
		if !strings.Contains(t, ".") {
			t = "public." + t
		}
		if !slices.Contains(capture.DefaultTables, t) {
			return nil, fmt.Errorf("%w: %s is not a captured table (captured: %s)", errUsage, t, strings.Join(capture.DefaultTables, ", "))
		}
		if !slices.Contains(names, t) {
			names = append(names, t)
		}
	}
	return names, nil
}
