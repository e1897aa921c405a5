// Package duckdb is the embedded local warehouse, in two DuckDB files: RAW (raw_store.duckdb), which
// the loader writes and the running stack always holds, and the models file (warehouse.duckdb),
// where dbt writes silver and gold. It links DuckDB through cgo, so only the local CLI imports it,
// never a Lambda.
//
// DuckDB lets one process write a file. RAW has one writer, the stack, so loads never wait for dbt:
// before each build the stack copies a consistent snapshot of RAW that dbt reads (Snapshot), and
// lends dbt the models file, which it otherwise attaches read-only for queries (LendModels).
// Queries from other processes go through the SQL handler (sql.go).
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
	"sync"
	"sync/atomic"
	"time"

	duckdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/statedir"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// Schema is the DuckDB schema that holds the RAW tables and the ledger.
const Schema = "raw"

// RawCatalog is the name queries and dbt give the RAW database: the RAW file's own name in the
// stack, and the alias dbt attaches the snapshot under, so a dbt view that names a source
// ("raw_store"."raw"."accounts") reads live RAW when the stack queries it. Not "raw": a catalog
// named like the schema makes raw.accounts ambiguous.
const RawCatalog = "raw_store"

// RawPath is the RAW file that goes with the models file at warehousePath: beside it.
func RawPath(warehousePath string) string {
	return filepath.Join(filepath.Dir(warehousePath), RawCatalog+".duckdb")
}

// SnapshotPath is where the stack leaves the snapshot of RAW that dbt reads.
func SnapshotPath(warehousePath string) string {
	return filepath.Join(filepath.Dir(warehousePath), "dbt", RawCatalog+"-snapshot.duckdb")
}

// DefaultPath is where the local warehouse lives: WAREHOUSE_PATH, else warehouse.duckdb in the
// stack's state directory (statedir.Dir).
func DefaultPath() string {
	if p := os.Getenv("WAREHOUSE_PATH"); p != "" {
		return p
	}
	return filepath.Join(statedir.Dir(), "warehouse.duckdb")
}

// Warehouse is the RAW file, held open by this process, with the models file attached read-only
// when one is given. It is safe for concurrent use: loads take turns, queries run beside them, and
// a snapshot waits for the load in progress, not for queries.
type Warehouse struct {
	path   string
	models string // dbt's file, attached as catalogOf(models) while not lent to dbt; "" for none
	views  []View // the models' views published after each build (WithPublication)
	// lastPublish is what the last publication cost; guarded by lent
	lastPublish PublishStats
	readOnly    bool
	memory      string // memory_limit ("512MB"); "" leaves DuckDB's default, 80% of the machine's RAM
	threads     int    // DuckDB's threads; 0 leaves its default, one per core
	tables      []string
	turn        chan struct{} // held by a load or a snapshot: one writer of RAW at a time
	use         sync.RWMutex  // queries share db (R); Close has it alone (W)
	snapping    sync.Mutex    // one Snapshot at a time: its checkpoints write the file another copies
	lent        sync.RWMutex  // queries that may read the models (R); dbt's turn on them (W)
	attached    bool          // the models file is attached; written under use (W, or R with lent W)
	snap        *fileSync     // Snapshot's copy and what it holds; guarded by snapping
	// reopenDue: a snapshot met a query and left its reopen to the last reader (reopenIfIdle).
	reopenDue atomic.Bool
	marks     highWaters // each table's newest loaded key, for the catch-up (HighWaters)
	// paths caches searchPath by its models argument: the schemas it lists change only when
	// the models file is attached or detached, which clears the cache.
	pathsMu sync.Mutex
	paths   map[bool]string
	db      *sql.DB
	conn    *duckdriver.Connector
}

// Option configures Open.
type Option func(*Warehouse)

// WithModels attaches dbt's file at path (if it exists) read-only, so queries find silver and
// gold beside RAW; LendModels gives it to dbt for a build.
func WithModels(path string) Option { return func(w *Warehouse) { w.models = path } }

// WithMemoryLimit bounds what DuckDB holds in memory (its memory_limit, such as "512MB"): past
// it, DuckDB evicts cached blocks and spills to RAW's .tmp folder. Its default, 80% of the
// machine's RAM, let a long-running stack keep every block of RAW it ever read.
func WithMemoryLimit(limit string) Option { return func(w *Warehouse) { w.memory = limit } }

// WithThreads sets how many threads DuckDB runs a query on (its default: one per core). What a
// query holds in memory (a window's or a sort's buffers) is kept per thread, so fewer threads
// need less memory: a reconcile pass over 200,000 RAW rows needed 96MB with 2 threads, 48MB with 1.
func WithThreads(n int) Option { return func(w *Warehouse) { w.threads = n } }

// Open opens (creating if needed) the RAW file at path with a RAW table for each of tables
// (warehouse.DefaultTables when nil) and the load ledger.
func Open(ctx context.Context, path string, tables []string, opts ...Option) (*Warehouse, error) {
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
	for _, o := range opts {
		o(w)
	}
	if err := w.open(ctx); err != nil {
		return nil, err
	}
	if w.models != "" {
		if err := w.moveRaw(ctx); err != nil {
			w.closeDB()
			return nil, err
		}
		if err := w.attachModels(ctx); err != nil {
			w.closeDB()
			return nil, err
		}
		if _, err := w.publish(ctx); err != nil {
			w.closeDB()
			return nil, err
		}
	}
	if err := w.readHighWaters(ctx); err != nil {
		w.closeDB()
		return nil, err
	}
	return w, nil
}

// OpenReadOnly opens the warehouse whose models file is path for queries only, as `fin sql` does
// when no stack holds the files: RAW beside it with the models attached, or, before the stack
// has moved RAW out of it, the one file. Several read-only processes may share a file; none may
// share it with a writer.
func OpenReadOnly(ctx context.Context, path string) (*Warehouse, error) {
	w := &Warehouse{path: RawPath(path), models: path, readOnly: true, turn: make(chan struct{}, 1)}
	if _, err := os.Stat(w.path); err != nil {
		w.path, w.models = path, ""
	}
	if _, err := os.Stat(w.path); err != nil {
		return nil, fmt.Errorf("warehouse %s: %w (it is created when the stack first loads data)", path, err)
	}
	if err := w.open(ctx); err != nil {
		return nil, err
	}
	if err := w.attachModels(ctx); err != nil {
		w.closeDB()
		return nil, err
	}
	return w, nil
}

// Path is the RAW file (the one file for a read-only warehouse of the old layout).
func (w *Warehouse) Path() string { return w.path }

func (w *Warehouse) open(ctx context.Context) error {
	dsn := w.path
	if w.readOnly {
		dsn += "?access_mode=read_only"
	} else {
		// DuckDB checkpoints every 16 MB of WAL by default, which with objects of a few MB meant a
		// checkpoint every few loads and halved the load rate; Snapshot and Close checkpoint.
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
	if err := w.confine(ctx, db); err != nil {
		db.Close()
		conn.Close()
		return err
	}
	w.db, w.conn = db, conn
	if w.readOnly {
		return nil
	}
	if err := w.ensureTables(ctx); err != nil {
		w.closeDB()
		return err
	}
	if err := w.attachPublished(ctx); err != nil {
		w.closeDB()
		return err
	}
	return nil
}

// lockHint explains an IO error at open, which is how DuckDB reports a file another process
// holds (it takes an exclusive lock for writing).
func lockHint(err error) string {
	if isDuckDB(err, duckdriver.ErrorTypeIO) {
		return " (if another process holds the file: stop it, or query through the running stack with `fin sql`)"
	}
	return ""
}

// aboutContent tells a failure of reading an object's bytes (not Parquet, wrong columns, a value
// that does not convert), which is permanent, from one of the warehouse itself (a write
// conflict, memory, an interrupted query, the connection), which may pass.
func aboutContent(err error) bool {
	var de *duckdriver.Error
	if !errors.As(err, &de) {
		return false
	}
	switch de.Type {
	case duckdriver.ErrorTypeTransaction, duckdriver.ErrorTypeOutOfMemory, duckdriver.ErrorTypeInterrupt,
		duckdriver.ErrorTypeConnection, duckdriver.ErrorTypeFatal, duckdriver.ErrorTypeInternal:
		return false
	}
	return true
}

// isDuckDB reports whether err is a DuckDB error of type t.
func isDuckDB(err error, t duckdriver.ErrorType) bool {
	var de *duckdriver.Error
	return errors.As(err, &de) && de.Type == t
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

// take waits for this caller's turn to write RAW; release gives it back.
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

func (w *Warehouse) release() {
	w.reopenIfDue()
	<-w.turn
}

// share gives a reader the handle beside loads and other readers; unshare gives it back.
func (w *Warehouse) share() error {
	w.use.RLock()
	if w.db == nil {
		w.use.RUnlock()
		return errors.New("warehouse is closed")
	}
	return nil
}

func (w *Warehouse) unshare() {
	w.use.RUnlock()
	w.reopenIfIdle()
}

// Loaded reports whether key was loaded with etag (the cheap check that skips a duplicate event
// before anything is downloaded; Load checks again inside its transaction).
func (w *Warehouse) Loaded(ctx context.Context, key, etag string) (bool, error) {
	if err := w.share(); err != nil {
		return false, err
	}
	defer w.unshare()
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
	tmp, etag, err := fetchToTemp(ctx, w.loadDir(), obj)
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

// Checkpoint writes what loads left in DuckDB's WAL into the database file, on RAW's writer in
// its turn: the read-only shell (Query) refuses it, and the loader benchmark times its loads until
// the rows are in the file itself.
func (w *Warehouse) Checkpoint(ctx context.Context) error {
	if err := w.take(ctx); err != nil {
		return err
	}
	defer w.release()
	if _, err := w.db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint %s: %w", w.path, err)
	}
	return nil
}

// fetchToTemp downloads obj into dir, the one directory the confined warehouse may read.
func fetchToTemp(ctx context.Context, dir string, obj warehouse.Object) (path, etag string, err error) {
	f, err := os.CreateTemp(dir, "bronze-*.parquet")
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
		if ctx.Err() != nil || !aboutContent(err) {
			return res, fmt.Errorf("load %s: %w", obj.Key, err)
		}
		return res, fmt.Errorf("load %s: %w: %v", obj.Key, warehouse.ErrBadObject, err)
	}
	if res.Rows, err = r.RowsAffected(); err != nil {
		return res, fmt.Errorf("load %s: %w", obj.Key, err)
	}
	if res.Rows == 0 {
		// Every bronze object has rows; a ledger row of 0 would mark this one loaded for good
		// (as the Snowflake warehouse refuses it too).
		return res, fmt.Errorf("load %s: %w: the object holds no rows", obj.Key, warehouse.ErrNothingLoaded)
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
	w.marks.raise(obj.Key)
	return res, nil
}

// Query runs query, which must be one read-only statement (see checkRead), and writes its result
// as CSV with a header to out.
func (w *Warehouse) Query(ctx context.Context, query string, out io.Writer) error {
	return w.read(ctx, csvQuery(ctx, query, out))
}

// csvQuery checks query is one read-only statement, runs it and writes its result as CSV.
func csvQuery(ctx context.Context, query string, out io.Writer) func(*sql.Conn) (bool, error) {
	return func(conn *sql.Conn) (bool, error) {
		if err := checkRead(ctx, conn, query); err != nil {
			return false, err
		}
		rows, err := conn.QueryContext(ctx, query)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		return true, warehouse.WriteCSV(rows, out)
	}
}

// QueryRAW runs query as Query does, on RAW alone (the models, attached or not, are left out of
// its search path): it neither waits for dbt's turn on the models nor holds it back. For the
// stack's chores (the console's counts, the reconcile pass), which run at a low CPU priority:
// a chore that held the models' read lock would keep dbt's next build waiting for as long as the
// busy machine left the chore waiting for a core.
func (w *Warehouse) QueryRAW(ctx context.Context, query string, out io.Writer) error {
	_, err := w.readOnce(ctx, false, csvQuery(ctx, query, out))
	return err
}

// RAW is the warehouse's RAW file alone, for readers that never need the models (QueryRAW).
type RAW struct{ *Warehouse }

// Query runs query on RAW alone (QueryRAW).
func (r RAW) Query(ctx context.Context, query string, out io.Writer) error {
	return r.QueryRAW(ctx, query, out)
}

// QueryRows runs query with positional (?) args and hands its rows to read: typed reads for the
// stack's own parts (the API's history).
func (w *Warehouse) QueryRows(ctx context.Context, query string, args []any, read func(*sql.Rows) error) error {
	return w.read(ctx, rowsQuery(ctx, query, args, read))
}

// rowsQuery runs query with args and hands its rows to read.
func rowsQuery(ctx context.Context, query string, args []any, read func(*sql.Rows) error) func(*sql.Conn) (bool, error) {
	return func(conn *sql.Conn) (bool, error) {
		rows, err := conn.QueryContext(ctx, query, args...)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		if err := read(rows); err != nil {
			return true, err
		}
		return true, rows.Err()
	}
}

// read runs q on a connection whose search path finds dbt's models and the RAW tables. While dbt
// has the models file, RAW still answers at once; a query that names a model (and so fails to
// bind before any row) waits until dbt gives the file back and runs again. q reports whether it
// got as far as rows, after which an error is final.
func (w *Warehouse) read(ctx context.Context, q func(*sql.Conn) (bool, error)) error {
	if !w.lent.TryRLock() {
		started, err := w.readOnce(ctx, false, q)
		// A model that is not there fails to bind as a catalog error.
		if err == nil || started || !isDuckDB(err, duckdriver.ErrorTypeCatalog) || ctx.Err() != nil {
			return err
		}
		// Wait for dbt's turn to end, within the query's own deadline.
		for !w.lent.TryRLock() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for dbt to finish with the models: %w", ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	defer w.lent.RUnlock()
	_, err := w.readOnce(ctx, true, q)
	return err
}

// readOnce runs q with the models in the search path if models is set and they are attached
// (read under use: a reopen changes it).
func (w *Warehouse) readOnce(ctx context.Context, models bool, q func(*sql.Conn) (bool, error)) (bool, error) {
	if err := w.share(); err != nil {
		return false, err
	}
	defer w.unshare()
	models = models && w.attached
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	// Unqualified names find dbt's models and the RAW tables: `select * from dim_accounts`.
	// A schema dbt has not built yet is left out, as DuckDB refuses an unknown one. The first
	// entry also becomes the connection's default database, so it is reset before the
	// connection goes back to the pool (DETACH refuses a default database).
	if _, err := conn.ExecContext(ctx, `SET search_path = '`+w.cachedSearchPath(ctx, conn, models)+`'`); err != nil {
		return false, fmt.Errorf("set search_path: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "RESET search_path")
	return q(conn)
}

// cachedSearchPath is searchPath, worked out once per attachment of the models file rather than
// with five catalog queries before every read.
func (w *Warehouse) cachedSearchPath(ctx context.Context, conn *sql.Conn, models bool) string {
	w.pathsMu.Lock()
	defer w.pathsMu.Unlock()
	if p, ok := w.paths[models]; ok {
		return p
	}
	p, err := w.searchPath(ctx, conn, models)
	if err != nil {
		return "main" // not remembered: the next read tries again
	}
	if w.paths == nil {
		w.paths = map[bool]string{}
	}
	w.paths[models] = p
	return p
}

// forgetSearchPaths is called when the models file is attached or detached.
func (w *Warehouse) forgetSearchPaths() {
	w.pathsMu.Lock()
	w.paths = nil
	w.pathsMu.Unlock()
}

// searchPath lists gold, silver, raw and main, those that exist, in that order; gold and silver
// from the models file when it is attached and models is set.
func (w *Warehouse) searchPath(ctx context.Context, conn *sql.Conn, models bool) (string, error) {
	self := catalogOf(w.path)
	entries := [][2]string{{self, "gold"}, {self, "silver"}, {self, Schema}, {self, "main"}}
	if models {
		m := catalogOf(w.models)
		entries = [][2]string{{m, "gold"}, {m, "silver"}, {self, Schema}, {m, "main"}, {self, "main"}}
	}
	path := []string{}
	for _, e := range entries {
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.schemata
			WHERE catalog_name = ? AND schema_name = ?`, e[0], e[1]).Scan(&n); err != nil {
			return "", err
		}
		if n > 0 {
			path = append(path, quote(e[0])+"."+quote(e[1]))
		}
	}
	if len(path) == 0 {
		return "main", nil
	}
	return strings.Join(path, ","), nil
}

// File queries a warehouse that another process may hold: each QueryRows opens it read-only
// and closes it again, so a process that only reads now and then (a standalone `fin api`) never
// keeps the stack or dbt from the files. While another process holds them, QueryRows fails.
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

func (w *Warehouse) closeDB() error {
	if w.db == nil {
		return nil
	}
	err := errors.Join(w.db.Close(), w.conn.Close())
	w.db, w.conn = nil, nil
	return err
}

// Close waits for the load, snapshot or queries in progress and closes the files.
func (w *Warehouse) Close() error {
	w.turn <- struct{}{}
	defer w.release()
	w.use.Lock()
	defer w.use.Unlock()
	return w.closeDB()
}
