// Package duckdb is the embedded local warehouse: one DuckDB file that the loader writes, dbt
// transforms and `fin sql` queries. It links DuckDB through cgo, so only the local CLI imports it,
// never a Lambda.
//
// DuckDB lets one process hold a file. The process that runs the stack keeps it open and lends it
// out: Pause closes the file (after the load in progress) so dbt can open it, and the function it
// returns takes it back. Queries from other processes go through the SQL handler (sql.go).
package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	duckdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// Schema is the DuckDB schema that holds the RAW tables and the ledger.
const Schema = "raw"

// DefaultPath is where the local warehouse lives: WAREHOUSE_PATH; else warehouse.duckdb in
// FIN_STATE_DIR; else .fin/warehouse.duckdb in this repository (found by walking up from the
// working directory to its go.mod), or in the working directory outside it.
func DefaultPath() string {
	if p := os.Getenv("WAREHOUSE_PATH"); p != "" {
		return p
	}
	state := os.Getenv("FIN_STATE_DIR")
	if state == "" {
		state = filepath.Join(repoRoot(), ".fin")
	}
	return filepath.Join(state, "warehouse.duckdb")
}

const module = "module github.com/fin-orchestrator/fin-orchestrator\n"

func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), module) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return wd
		}
		dir = parent
	}
}

// Warehouse is the DuckDB file, held open by this process. It is safe for concurrent use: loads,
// queries and pauses take turns on the file.
type Warehouse struct {
	path     string
	readOnly bool
	tables   []string
	turn     chan struct{} // a token held by whoever uses db: one load, query or pause at a time
	db       *sql.DB
	conn     *duckdriver.Connector
}

// Open opens (creating if needed) the warehouse file at path with a RAW table for each of tables
// (warehouse.DefaultTables when nil) and the load ledger.
func Open(ctx context.Context, path string, tables []string) (*Warehouse, error) {
	if tables == nil {
		tables = warehouse.DefaultTables
	}
	if err := warehouse.CheckTables(tables); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("warehouse directory: %w", err)
	}
	w := &Warehouse{path: path, tables: tables, turn: make(chan struct{}, 1)}
	if err := w.open(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// OpenReadOnly opens an existing warehouse file for queries only, as `fin sql` does when no stack
// holds the file. Several read-only processes may share a file; none may share it with a writer.
func OpenReadOnly(ctx context.Context, path string) (*Warehouse, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("warehouse %s: %w (it is created when the stack first loads data)", path, err)
	}
	w := &Warehouse{path: path, readOnly: true, turn: make(chan struct{}, 1)}
	if err := w.open(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// Path is the warehouse file.
func (w *Warehouse) Path() string { return w.path }

func (w *Warehouse) open(ctx context.Context) error {
	dsn := w.path
	if w.readOnly {
		dsn += "?access_mode=read_only"
	} else {
		// DuckDB checkpoints every 16 MB of WAL by default, which with objects of a few MB meant a
		// checkpoint every few loads and halved the load rate; closing (Pause, Close) checkpoints.
		dsn += "?checkpoint_threshold=256MB"
	}
	conn, err := duckdriver.NewConnector(dsn, nil)
	if err != nil {
		return fmt.Errorf("open warehouse %s: %w%s", w.path, err, lockHint(err))
	}
	db := sql.OpenDB(conn)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		conn.Close()
		return fmt.Errorf("open warehouse %s: %w%s", w.path, err, lockHint(err))
	}
	w.db, w.conn = db, conn
	if w.readOnly {
		return nil
	}
	if err := w.ensureTables(ctx); err != nil {
		w.closeDB()
		return err
	}
	return nil
}

func lockHint(err error) string {
	if strings.Contains(err.Error(), "lock") {
		return " (another process holds the file: stop it, or query through the running stack with `fin sql`)"
	}
	return ""
}

func (w *Warehouse) ensureTables(ctx context.Context) error {
	stmts := []string{"CREATE SCHEMA IF NOT EXISTS " + Schema}
	for _, t := range w.tables {
		stmts = append(stmts, createRawTable(t))
	}
	stmts = append(stmts, `CREATE TABLE IF NOT EXISTS `+Schema+`.`+warehouse.LedgerTable+` (
		object_key VARCHAR PRIMARY KEY, etag VARCHAR NOT NULL, source_table VARCHAR NOT NULL,
		row_count BIGINT NOT NULL, loaded_at TIMESTAMPTZ NOT NULL)`)
	for _, s := range stmts {
		if _, err := w.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create warehouse tables in %s: %w", w.path, err)
		}
	}
	return nil
}

func createRawTable(table string) string {
	var cols []string
	for _, c := range slices.Concat(warehouse.RecordColumns, warehouse.MetaColumns) {
		cols = append(cols, quote(c.Name)+" "+c.DuckDB)
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (%s)", Schema, quote(table), strings.Join(cols, ", "))
}

// quote makes a DuckDB identifier; partition, offset and key are keywords.
func quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// literal makes a DuckDB string literal (read_parquet takes its path as a constant, not a bind).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// take waits for this caller's turn on the file; release gives it back.
func (w *Warehouse) take(ctx context.Context) error {
	select {
	case w.turn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for the warehouse file: %w", context.Cause(ctx))
	}
	if w.db == nil {
		<-w.turn
		return errors.New("warehouse is closed")
	}
	return nil
}

func (w *Warehouse) release() { <-w.turn }

// Loaded reports whether key was loaded with etag (the cheap check that skips a duplicate event
// before anything is downloaded; Load checks again inside its transaction).
func (w *Warehouse) Loaded(ctx context.Context, key, etag string) (bool, error) {
	if err := w.take(ctx); err != nil {
		return false, err
	}
	defer w.release()
	_, same, err := ledgerEntry(ctx, w.db, key, etag)
	return same, err
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ledgerEntry tells whether key is in the ledger, and whether with this etag.
func ledgerEntry(ctx context.Context, q queryer, key, etag string) (found, same bool, err error) {
	var got string
	err = q.QueryRowContext(ctx, "SELECT etag FROM "+Schema+"."+warehouse.LedgerTable+" WHERE object_key = ?", key).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read load ledger for %s: %w", key, err)
	}
	return true, got == etag, nil
}

// Load writes the rows of obj into raw.<table> and its ledger row in one transaction. An object
// already loaded with the same ETag is a duplicate and changes nothing; one loaded with another
// ETag (the landing rewrote it) has its rows replaced, so RAW always holds what bronze holds.
func (w *Warehouse) Load(ctx context.Context, obj warehouse.Object) (warehouse.Result, error) {
	if !slices.Contains(w.tables, obj.Table) {
		return warehouse.Result{}, fmt.Errorf("load %s: %w %q (configured: %s)", obj.Key, warehouse.ErrUnknownTable, obj.Table, strings.Join(w.tables, ", "))
	}
	// Download before taking the file, so a slow store does not hold up other loads.
	tmp, etag, err := fetchToTemp(ctx, obj)
	if err != nil {
		return warehouse.Result{}, err
	}
	defer os.Remove(tmp)
	if etag != "" {
		obj.ETag = etag
	}

	if err := w.take(ctx); err != nil {
		return warehouse.Result{}, err
	}
	defer w.release()
	return w.loadFile(ctx, obj, tmp)
}

func fetchToTemp(ctx context.Context, obj warehouse.Object) (path, etag string, err error) {
	f, err := os.CreateTemp("", "bronze-*.parquet")
	if err != nil {
		return "", "", fmt.Errorf("load %s: temporary file: %w", obj.Key, err)
	}
	etag, err = obj.Fetch(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", "", fmt.Errorf("load %s: %w", obj.Key, err)
	}
	return f.Name(), warehouse.NormalizeETag(etag), nil
}

func (w *Warehouse) loadFile(ctx context.Context, obj warehouse.Object, file string) (res warehouse.Result, err error) {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("load %s: begin: %w", obj.Key, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	found, same, err := ledgerEntry(ctx, tx, obj.Key, obj.ETag)
	if err != nil {
		return res, err
	}
	if same {
		return warehouse.Result{Duplicate: true}, tx.Rollback()
	}
	raw := Schema + "." + quote(obj.Table)
	if found {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+raw+" WHERE _object_key = ?", obj.Key); err != nil {
			return res, fmt.Errorf("load %s: remove the rows of its earlier version: %w", obj.Key, err)
		}
		res.Replaced = true
	}
	names := make([]string, len(warehouse.RecordColumns))
	for i, c := range warehouse.RecordColumns {
		names[i] = quote(c.Name)
	}
	cols := strings.Join(names, ", ")
	insert := fmt.Sprintf("INSERT INTO %s (%s, _object_key, _loaded_at) SELECT %s, ?, now() FROM read_parquet(%s)",
		raw, cols, cols, literal(file))
	r, err := tx.ExecContext(ctx, insert, obj.Key)
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("load %s: %w", obj.Key, err)
		}
		return res, fmt.Errorf("load %s: %w: %v", obj.Key, warehouse.ErrBadObject, err)
	}
	if res.Rows, err = r.RowsAffected(); err != nil {
		return res, fmt.Errorf("load %s: %w", obj.Key, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO `+Schema+`.`+warehouse.LedgerTable+`
		(object_key, etag, source_table, row_count, loaded_at) VALUES (?, ?, ?, ?, now())
		ON CONFLICT (object_key) DO UPDATE SET etag = excluded.etag, source_table = excluded.source_table,
		row_count = excluded.row_count, loaded_at = excluded.loaded_at`,
		obj.Key, obj.ETag, obj.Table, res.Rows)
	if err != nil {
		return res, fmt.Errorf("load %s: write load ledger: %w", obj.Key, err)
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("load %s: commit: %w", obj.Key, err)
	}
	return res, nil
}

// Query runs query and writes its result as CSV with a header to out.
func (w *Warehouse) Query(ctx context.Context, query string, out io.Writer) error {
	if err := w.take(ctx); err != nil {
		return err
	}
	defer w.release()
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Unqualified names find dbt's models and the RAW tables: `select * from dim_accounts`.
	// A schema dbt has not built yet is left out, as DuckDB refuses an unknown one.
	if _, err := conn.ExecContext(ctx, `SET search_path = '`+searchPath(ctx, conn)+`'`); err != nil {
		return fmt.Errorf("set search_path: %w", err)
	}
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	return warehouse.WriteCSV(rows, out)
}

// searchPath lists gold, silver, raw and main, those that exist, in that order.
func searchPath(ctx context.Context, conn *sql.Conn) string {
	path := []string{}
	for _, schema := range []string{"gold", "silver", Schema, "main"} {
		var n int
		err := conn.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.schemata
			WHERE schema_name = ? AND catalog_name = current_database()`, schema).Scan(&n)
		if err == nil && n > 0 {
			path = append(path, schema)
		}
	}
	if len(path) == 0 {
		return "main"
	}
	return strings.Join(path, ",")
}

// QueryRows runs query with positional (?) args and hands its rows to read, holding the file
// until read returns: typed reads for the stack's own parts (the API's history).
func (w *Warehouse) QueryRows(ctx context.Context, query string, args []any, read func(*sql.Rows) error) error {
	if err := w.take(ctx); err != nil {
		return err
	}
	defer w.release()
	rows, err := w.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := read(rows); err != nil {
		return err
	}
	return rows.Err()
}

// File queries a warehouse file that another process may hold: each QueryRows opens it read-only
// and closes it again, so a process that only reads now and then (a standalone `fin api`) never
// keeps the stack or dbt from the file. While another process holds it, QueryRows fails.
type File struct{ Path string }

// QueryRows implements the same typed read as (*Warehouse).QueryRows.
func (f File) QueryRows(ctx context.Context, query string, args []any, read func(*sql.Rows) error) error {
	w, err := OpenReadOnly(ctx, f.Path)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.QueryRows(ctx, query, args, read)
}

// Pause closes the file once the load or query in progress is done, so another process (dbt) can
// open it. Loads and queries wait until resume reopens it. Call resume exactly once.
func (w *Warehouse) Pause(ctx context.Context) (resume func(context.Context) error, err error) {
	if err := w.take(ctx); err != nil {
		return nil, err
	}
	if err := w.closeDB(); err != nil {
		w.release()
		return nil, fmt.Errorf("pause warehouse: %w", err)
	}
	return func(ctx context.Context) error {
		defer w.release()
		if err := w.open(ctx); err != nil {
			return fmt.Errorf("resume warehouse: %w", err)
		}
		return nil
	}, nil
}

func (w *Warehouse) closeDB() error {
	if w.db == nil {
		return nil
	}
	err := errors.Join(w.db.Close(), w.conn.Close())
	w.db, w.conn = nil, nil
	return err
}

// Close waits for the load or query in progress and closes the file.
func (w *Warehouse) Close() error {
	w.turn <- struct{}{}
	defer w.release()
	return w.closeDB()
}
