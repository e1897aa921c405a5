package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

func init() {
	register(command{name: "sql", summary: "query the local warehouse (DuckDB) and print CSV with a header", run: runSQL})
}

// defaultConsole is where the running stack serves its console, and /sql on it.
const defaultConsole = "http://127.0.0.1:8080"

func runSQL(ctx context.Context, args []string) error { return querySQL(ctx, args, os.Stdout) }

// querySQL is `fin sql` writing its CSV to out.
func querySQL(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlags("sql", `[flags] "<query>"`)
	path := fs.String("warehouse", duckdb.DefaultPath(), "the DuckDB warehouse file (env WAREHOUSE_PATH)")
	consoleURL := os.Getenv("FIN_CONSOLE_URL")
	if consoleURL == "" {
		consoleURL = defaultConsole
	}
	console := fs.String("console", consoleURL, "the running stack's console, asked first (env FIN_CONSOLE_URL)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	query := strings.TrimSpace(strings.Join(fs.Args(), " "))
	if query == "" {
		fs.Usage()
		return fmt.Errorf("%w: no query given", errUsage)
	}

	wh := &localWarehouse{path: *path, console: *console}
	defer wh.Close()
	return wh.Query(ctx, query, out)
}

// errNoStack: nothing listens at the console address.
var errNoStack = duckdb.ErrNoServer

// queryStack asks the running stack's /sql at url (the stack holds the warehouse file).
func queryStack(ctx context.Context, url, token, query string, out io.Writer) error {
	return duckdb.PostQuery(ctx, url, token, query, out)
}
