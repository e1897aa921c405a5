package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

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
	if err := parseFlags(fs, args); err != nil {
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
var errNoStack = errors.New("no running stack")

func queryStack(ctx context.Context, url, token, query string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(query))
	if err != nil {
		return fmt.Errorf("query %s: %w", url, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return errNoStack
	}
	if err != nil {
		return fmt.Errorf("query the running stack at %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("the running stack at %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return fmt.Errorf("read the answer of %s: %w", url, err)
	}
	if msg := resp.Trailer.Get(duckdb.SQLErrorTrailer); msg != "" {
		return fmt.Errorf("query failed part-way: %s", msg)
	}
	return nil
}
