package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	duckdriver "github.com/duckdb/duckdb-go/v2"
)

// The warehouse is shared with `fin sql` and /sql, whose queries come from outside. DuckDB's
// enable_external_access and lock_configuration are settings of the whole database, not of a
// connection, and a second instance on the same files would break DuckDB's one-writer rule; so
// the one instance is confined: it reaches only its own files (RAW, the models file and their
// WALs) and the directory loads download into, and nobody can lift that while it runs.

// loadDir is where loads download objects before reading them: the one directory of the file
// system the warehouse may read besides its own files.
func (w *Warehouse) loadDir() string { return filepath.Join(filepath.Dir(w.path), "loading") }

// confine turns external access off for the whole database, bounds its memory, and locks its
// configuration.
func (w *Warehouse) confine(ctx context.Context, db *sql.DB) error {
	paths := []string{}
	if w.models != "" {
		for _, suffix := range []string{"", ".wal", ".wal.checkpoint"} {
			paths = append(paths, literal(w.models+suffix))
			if w.publishing() {
				paths = append(paths, literal(PublishedPath(w.models)+suffix))
			}
		}
	}
	dirs := []string{}
	if !w.readOnly {
		if err := os.MkdirAll(w.loadDir(), 0o700); err != nil {
			return fmt.Errorf("confine warehouse %s: %w", w.path, err)
		}
		dirs = append(dirs, literal(w.loadDir()+string(filepath.Separator)))
	}
	settings := []string{
		// Each object is read once, by its load: caching the files read keeps them for nothing.
		"SET enable_external_file_cache = false",
		// jemalloc, DuckDB's allocator, hands a query's freed pages back to the OS only when a
		// thread allocates again or a task peaked past 128 MiB: in between the stack's DuckDB,
		// idle, kept a reconcile pass's or a checkpoint's peak resident. Its background thread
		// purges them on time (TestQueryPeakGoesBackToTheOS).
		"SET allocator_background_threads = true",
	}
	if w.threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", w.threads))
	}
	if w.memory != "" {
		settings = append(settings, "SET memory_limit = "+literal(w.memory))
	}
	for _, s := range append(settings,
		"SET allowed_paths = ["+strings.Join(paths, ",")+"]",
		"SET allowed_directories = ["+strings.Join(dirs, ",")+"]",
		"SET enable_external_access = false",
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET lock_configuration = true",
	) {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("confine warehouse %s: %s: %w", w.path, s, err)
		}
	}
	return nil
}

// ErrNotRead: a query given to Query is not one read-only statement.
var ErrNotRead = errors.New("only one read-only statement (SELECT, WITH, FROM, DESCRIBE ...) may run here")

// checkRead refuses anything but a single SELECT, as DuckDB's own parser and planner see it.
// The statement count comes first: preparing text with several statements would run all but
// the last (duckdb-go executes them), so only a lone statement is ever prepared.
func checkRead(ctx context.Context, conn *sql.Conn, query string) error {
	var parsed struct {
		Error      bool   `json:"error"`
		Message    string `json:"error_message"`
		Statements []any  `json:"statements"`
	}
	var raw string
	if err := conn.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql(?::VARCHAR) AS VARCHAR)", query).Scan(&raw); err != nil {
		return fmt.Errorf("parse the query: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &parsed); err != nil {
		return fmt.Errorf("parse the query: %w", err)
	}
	switch {
	case parsed.Error && strings.Contains(parsed.Message, "Only SELECT"):
		return fmt.Errorf("%w: refused a statement that is not a SELECT (or several statements)", ErrNotRead)
	case parsed.Error:
		return fmt.Errorf("parse the query: %s", parsed.Message)
	case len(parsed.Statements) != 1:
		return fmt.Errorf("%w: refused %d statements", ErrNotRead, len(parsed.Statements))
	}
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*duckdriver.Conn)
		if !ok {
			return fmt.Errorf("check the query: driver connection is %T", dc)
		}
		st, err := c.PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		defer st.Close()
		typ, err := st.(*duckdriver.Stmt).StatementType()
		if err != nil {
			return fmt.Errorf("check the query: %w", err)
		}
		if typ != duckdriver.STATEMENT_TYPE_SELECT {
			return fmt.Errorf("%w: refused a statement of type %d", ErrNotRead, typ)
		}
		return nil
	})
}
