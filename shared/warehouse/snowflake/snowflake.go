// Package snowflake is the warehouse of the AWS deployment: bronze objects are loaded with
// COPY INTO ... FILES = ('<key>') from a stage over the bucket, so the bytes go from S3 to
// Snowflake without passing through the Lambda. Pure Go (gosnowflake, no cgo).
//
// Each load is one Snowflake transaction: lock the table's row in RAW._LOAD_LOCK (so concurrent
// Lambdas take turns per table), read the ledger, COPY, write the ledger. Snowflake's own load
// metadata skips a file it already loaded; the ledger makes that check cheap and explicit.
package snowflake

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	sf "github.com/snowflakedb/gosnowflake/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// Config says where and how to load.
type Config struct {
	Account   string // account identifier, e.g. myorg-myaccount
	User      string
	Role      string
	Warehouse string
	Database  string
	Schema    string // the RAW schema, default RAW
	// PrivateKey signs the key-pair (JWT) login. No passwords.
	PrivateKey *rsa.PrivateKey
	// Stage is the stage over the bucket's root, so a stage path equals an object key. Default
	// <Schema>.BRONZE_STAGE. An external stage is created by an administrator (it needs a
	// storage integration); see docs/loader.md.
	Stage   string
	Tables  []string      // source tables loaded, default warehouse.DefaultTables
	Timeout time.Duration // bound on one load (COPY, ledger), default 2 minutes
	// MaxRetries bounds the driver's retries of a failed HTTP request (0: the driver's default).
	MaxRetries int
	// Host, Port and Protocol point the driver at another server than <account>.snowflakecomputing.com
	// (a local fakesnow server); empty for Snowflake.
	Host     string
	Port     int
	Protocol string
}

// Warehouse loads into Snowflake. Safe for concurrent use.
type Warehouse struct {
	db     *sql.DB
	cfg    Config
	schema string
}

// Open connects and creates the RAW tables, the ledger and the lock table if they are missing.
func Open(ctx context.Context, cfg Config) (*Warehouse, error) {
	if cfg.Schema == "" {
		cfg.Schema = "RAW"
	}
	if cfg.Stage == "" {
		cfg.Stage = cfg.Schema + ".BRONZE_STAGE"
	}
	if cfg.Tables == nil {
		cfg.Tables = warehouse.DefaultTables
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if err := warehouse.CheckTables(cfg.Tables); err != nil {
		return nil, err
	}
	// The schema and the stage are spliced into SQL as identifiers: plain names only.
	if !objectName(cfg.Schema, 2) {
		return nil, fmt.Errorf("snowflake: schema %q: want [<database>.]<schema>, unquoted identifiers", cfg.Schema)
	}
	if !objectName(cfg.Stage, 3) {
		return nil, fmt.Errorf("snowflake: stage %q: want [[<database>.]<schema>.]<stage>, unquoted identifiers", cfg.Stage)
	}
	if cfg.PrivateKey == nil {
		return nil, errors.New("snowflake: no private key for the key-pair login")
	}
	db := Connect(cfg, "fin-orchestrator-loader")
	w := &Warehouse{db: db, cfg: cfg, schema: cfg.Schema}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := w.ensureTables(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return w, nil
}

// Connect is a pool of key-pair (JWT) sessions for cfg, named application in Snowflake's query
// history. It creates nothing: readers (the API's history) use it with a read-only role.
func Connect(cfg Config, application string) *sql.DB {
	return sql.OpenDB(sf.NewConnector(sf.SnowflakeDriver{}, sf.Config{
		Account: cfg.Account, User: cfg.User, Role: cfg.Role, Warehouse: cfg.Warehouse,
		Database: cfg.Database, Schema: cfg.Schema,
		Authenticator: sf.AuthTypeJwt, PrivateKey: cfg.PrivateKey,
		Host: cfg.Host, Port: cfg.Port, Protocol: cfg.Protocol,
		LoginTimeout: 30 * time.Second, Application: application,
		MaxRetryCount: cfg.MaxRetries,
		// The driver's own logger stays silent: gosnowflake before v2.2.0 can write secrets to its
		// log (GO-2026-6665), and v2.2.0 is not served by the module proxy here. Errors still
		// reach our logs, with context, through the returned values.
		Tracing: "OFF",
	}))
}

// Close closes the connections.
func (w *Warehouse) Close() error { return w.db.Close() }

// DB is the connection pool, for checks and tests.
func (w *Warehouse) DB() *sql.DB { return w.db }

func (w *Warehouse) rawTable(table string) string { return w.schema + "." + strings.ToUpper(table) }
func (w *Warehouse) ledger() string               { return w.schema + "." + strings.ToUpper(warehouse.LedgerTable) }
func (w *Warehouse) lockTable() string            { return w.schema + "._LOAD_LOCK" }

// column is a Snowflake identifier for a RAW column: upper case and quoted, so that OFFSET and
// PARTITION are never read as keywords, and unquoted queries (offset, "OFFSET") find them.
func column(name string) string { return `"` + strings.ToUpper(name) + `"` }

// unquotedIdentifier is Snowflake's rule for an identifier written without quotes.
var unquotedIdentifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,254}$`)

// objectName reports whether name is 1 to parts unquoted identifiers joined by dots.
func objectName(name string, parts int) bool {
	ids := strings.Split(name, ".")
	if len(ids) > parts {
		return false
	}
	for _, id := range ids {
		if !unquotedIdentifier.MatchString(id) {
			return false
		}
	}
	return true
}

// literal is s as a Snowflake string constant. Inside single quotes Snowflake reads backslash
// escape sequences (\', \\, \n, \xhh, ...) as well as a doubled quote (SQL reference, string
// constants), so both \ and the quote are escaped; the quote is doubled, which no backslash
// setting can undo. Control characters are written as escapes, which keeps a statement on one
// line in the query history; the rest of Unicode is kept as it is. Every other statement binds
// its values; COPY's FILES list and its SELECT's key are written as literals (whether Snowflake
// binds inside COPY cannot be tried here: fakesnow is not Snowflake).
func literal(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("string %q is not UTF-8", s)
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 0:
			b.WriteString(`\0`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('\'')
	return b.String(), nil
}

// checkKey refuses a key outside the bronze key grammar, or of another table than the load's,
// before it reaches any statement.
func checkKey(key, table string) error {
	k, err := bronze.ParseKey(key)
	if err != nil {
		return err
	}
	if table != "" && k.Table != table {
		return &bronze.KeyError{Key: key, Part: "table", Reason: fmt.Sprintf("%q, but the load is into %s", k.Table, table)}
	}
	return nil
}

func (w *Warehouse) ensureTables(ctx context.Context) error {
	stmts := []string{"CREATE SCHEMA IF NOT EXISTS " + w.schema}
	for _, t := range w.cfg.Tables {
		var cols []string
		for _, c := range slices.Concat(warehouse.RecordColumns, warehouse.MetaColumns) {
			cols = append(cols, column(c.Name)+" "+c.Snowflake)
		}
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s)", w.rawTable(t), strings.Join(cols, ", ")))
	}
	stmts = append(stmts,
		"CREATE TABLE IF NOT EXISTS "+w.ledger()+` (OBJECT_KEY VARCHAR NOT NULL, ETAG VARCHAR NOT NULL,
			SOURCE_TABLE VARCHAR NOT NULL, ROW_COUNT NUMBER(19,0) NOT NULL, LOADED_AT TIMESTAMP_TZ NOT NULL)`,
		"CREATE TABLE IF NOT EXISTS "+w.lockTable()+" (SOURCE_TABLE VARCHAR NOT NULL, LOCKED_AT TIMESTAMP_TZ)")
	for _, s := range stmts {
		if _, err := w.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("snowflake: create RAW tables: %s: %w", firstLine(s), err)
		}
	}
	for _, t := range w.cfg.Tables {
		// Two Lambdas starting at once may both insert: harmless, the UPDATE locks every copy.
		_, err := w.db.ExecContext(ctx, "INSERT INTO "+w.lockTable()+" (SOURCE_TABLE) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM "+w.lockTable()+" WHERE SOURCE_TABLE = ?)", t, t)
		if err != nil {
			return fmt.Errorf("snowflake: prepare load lock of %s: %w", t, err)
		}
	}
	return nil
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// Loaded reports whether key is in the ledger with etag.
func (w *Warehouse) Loaded(ctx context.Context, key, etag string) (bool, error) {
	if err := checkKey(key, ""); err != nil {
		return false, fmt.Errorf("read load ledger: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	_, same, err := w.ledgerEntry(ctx, w.db, key, etag)
	return same, err
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (w *Warehouse) ledgerEntry(ctx context.Context, q queryer, key, etag string) (found, same bool, err error) {
	rows, err := q.QueryContext(ctx, "SELECT ETAG FROM "+w.ledger()+" WHERE OBJECT_KEY = ?", key)
	if err != nil {
		return false, false, fmt.Errorf("read load ledger for %s: %w", key, err)
	}
	defer rows.Close()
	for rows.Next() {
		var got string
		if err := rows.Scan(&got); err != nil {
			return false, false, fmt.Errorf("read load ledger for %s: %w", key, err)
		}
		found = true
		same = same || got == etag
	}
	return found, same, rows.Err()
}

// Load copies obj into its RAW table and writes its ledger row, in one transaction.
func (w *Warehouse) Load(ctx context.Context, obj warehouse.Object) (res warehouse.Result, err error) {
	if !slices.Contains(w.cfg.Tables, obj.Table) {
		return res, fmt.Errorf("load %s: %w %q", obj.Key, warehouse.ErrUnknownTable, obj.Table)
	}
	if err := checkKey(obj.Key, obj.Table); err != nil {
		return res, fmt.Errorf("load: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	if obj.ETag == "" {
		// The event carried no ETag (versitygw may send null): read the object once to learn it,
		// so the ledger can tell a redelivery from a rewrite.
		etag, err := obj.Fetch(ctx, io.Discard)
		if err != nil {
			return res, fmt.Errorf("load %s: %w", obj.Key, err)
		}
		obj.ETag = warehouse.NormalizeETag(etag)
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("load %s: begin: %w", obj.Key, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// Taking the table's lock row first makes concurrent loads of a table wait for each other, so
	// the ledger read below sees any load of the same object that committed meanwhile.
	if _, err := tx.ExecContext(ctx, "UPDATE "+w.lockTable()+" SET LOCKED_AT = CURRENT_TIMESTAMP() WHERE SOURCE_TABLE = ?", obj.Table); err != nil {
		return res, fmt.Errorf("load %s: take the load lock of %s: %w", obj.Key, obj.Table, err)
	}
	found, same, err := w.ledgerEntry(ctx, tx, obj.Key, obj.ETag)
	if err != nil {
		return res, err
	}
	if same {
		return warehouse.Result{Duplicate: true}, tx.Rollback()
	}
	if found {
		if err := w.forgetEarlier(ctx, tx, obj); err != nil {
			return res, err
		}
		res.Replaced = true
	}
	rows, err := w.copyObject(ctx, tx, obj, found, &res)
	if err != nil {
		return res, err
	}
	if rows == 0 {
		// Every bronze object has rows: a ledger row of 0 would mark this one loaded for good.
		return res, w.nothingLoaded(ctx, obj)
	}
	res.Rows = rows
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+w.ledger()+" (OBJECT_KEY, ETAG, SOURCE_TABLE, ROW_COUNT, LOADED_AT) VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP())",
		obj.Key, obj.ETag, obj.Table, rows); err != nil {
		return res, fmt.Errorf("load %s: write load ledger: %w", obj.Key, err)
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("load %s: commit: %w", obj.Key, err)
	}
	if res.Duplicate {
		res.Rows = 0
	}
	return res, nil
}

// forgetEarlier removes the rows and the ledger row of an earlier version of obj (a rewritten
// object), inside the load's transaction.
func (w *Warehouse) forgetEarlier(ctx context.Context, tx *sql.Tx, obj warehouse.Object) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+w.rawTable(obj.Table)+" WHERE _OBJECT_KEY = ?", obj.Key); err != nil {
		return fmt.Errorf("load %s: remove the rows of its earlier version: %w", obj.Key, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM "+w.ledger()+" WHERE OBJECT_KEY = ?", obj.Key); err != nil {
		return fmt.Errorf("load %s: remove its earlier ledger row: %w", obj.Key, err)
	}
	return nil
}

// copyObject COPYs obj into its RAW table and returns the rows it holds there. A rewritten object
// must load although Snowflake remembers loading its key (force). When our ledger has no row but
// Snowflake's load metadata says the file is in, it keeps what is there (res.Duplicate) if
// anything is, else loads it again.
func (w *Warehouse) copyObject(ctx context.Context, tx *sql.Tx, obj warehouse.Object, force bool, res *warehouse.Result) (int64, error) {
	rows, loaded, err := w.copyInto(ctx, tx, obj, force)
	if err != nil || loaded {
		return rows, err
	}
	if rows, err = w.rowsOf(ctx, tx, obj); err != nil || rows > 0 {
		res.Duplicate = rows > 0
		return rows, err
	}
	rows, _, err = w.copyInto(ctx, tx, obj, true)
	return rows, err
}

// nothingLoaded is the error of a load that found no rows: the object is read once to tell an
// object that is gone (ErrObjectNotFound from Fetch: nothing to load) from one the stage did not
// give (a stage over another location) or that holds no rows.
func (w *Warehouse) nothingLoaded(ctx context.Context, obj warehouse.Object) error {
	if obj.Fetch == nil {
		return fmt.Errorf("load %s: %w: COPY and COPY FORCE from @%s loaded no rows", obj.Key, warehouse.ErrNothingLoaded, w.cfg.Stage)
	}
	var size byteCounter
	etag, err := obj.Fetch(ctx, &size)
	if err != nil {
		return fmt.Errorf("load %s: COPY and COPY FORCE from @%s loaded no rows, and the object cannot be read: %w", obj.Key, w.cfg.Stage, err)
	}
	return fmt.Errorf("load %s: %w (%d bytes, ETag %s): COPY and COPY FORCE from @%s loaded no rows; is the stage's URL the bucket's root?",
		obj.Key, warehouse.ErrNothingLoaded, size, warehouse.NormalizeETag(etag), w.cfg.Stage)
}

type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) { *c += byteCounter(len(p)); return len(p), nil }

// copyStatement is the COPY of one bronze object: the Parquet columns by name, the row images
// parsed into VARIANT, the object key and load time added.
func (w *Warehouse) copyStatement(obj warehouse.Object, force bool) (string, error) {
	key, err := literal(obj.Key)
	if err != nil {
		return "", fmt.Errorf("load %s: %w", obj.Key, err)
	}
	var into, sel []string
	for _, c := range warehouse.RecordColumns {
		into = append(into, column(c.Name))
		v := fmt.Sprintf("$1:%s::%s", c.Name, c.Snowflake)
		if c.Snowflake == "VARIANT" {
			v = fmt.Sprintf("PARSE_JSON($1:%s::VARCHAR)", c.Name)
		}
		sel = append(sel, v)
	}
	into = append(into, column("_object_key"), column("_loaded_at"))
	sel = append(sel, key, "CURRENT_TIMESTAMP()")
	stmt := fmt.Sprintf("COPY INTO %s (%s) FROM (SELECT %s FROM @%s) FILES = (%s) FILE_FORMAT = (TYPE = PARQUET)",
		w.rawTable(obj.Table), strings.Join(into, ", "), strings.Join(sel, ", "), w.cfg.Stage, key)
	if force {
		stmt += " FORCE = TRUE"
	}
	return stmt, nil
}

// copyInto runs the COPY and returns the rows loaded, or loaded=false when Snowflake skipped the
// file as already loaded.
func (w *Warehouse) copyInto(ctx context.Context, tx *sql.Tx, obj warehouse.Object, force bool) (n int64, loaded bool, err error) {
	stmt, err := w.copyStatement(obj, force)
	if err != nil {
		return 0, false, err
	}
	rows, err := tx.QueryContext(ctx, stmt)
	if err != nil {
		return 0, false, fmt.Errorf("load %s: copy: %w", obj.Key, classify(err))
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, false, fmt.Errorf("load %s: copy result: %w", obj.Key, err)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, false, fmt.Errorf("load %s: copy result: %w", obj.Key, err)
		}
		res := map[string]string{}
		for i, c := range cols {
			res[strings.ToLower(c)] = vals[i].String
		}
		switch status := strings.ToUpper(res["status"]); {
		case status == "LOADED":
			if n, err = strconv.ParseInt(res["rows_loaded"], 10, 64); err != nil {
				return 0, false, fmt.Errorf("load %s: copy result: rows_loaded %q: %w", obj.Key, res["rows_loaded"], err)
			}
			loaded = true
		case status == "LOAD_SKIPPED" || strings.Contains(status, "0 FILES PROCESSED"):
		default:
			return 0, false, fmt.Errorf("load %s: copy: %w: status %s: %s", obj.Key, warehouse.ErrBadObject, res["status"], res["first_error"])
		}
	}
	if err := rows.Err(); err != nil {
		return 0, false, fmt.Errorf("load %s: copy: %w", obj.Key, classify(err))
	}
	return n, loaded, nil
}

func (w *Warehouse) rowsOf(ctx context.Context, tx *sql.Tx, obj warehouse.Object) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+w.rawTable(obj.Table)+" WHERE _OBJECT_KEY = ?", obj.Key).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("load %s: count its rows: %w", obj.Key, err)
	}
	return n, nil
}

// classify marks errors about the file's content (SQL state class 22: data exception) as a bad
// object; everything else (network, permissions, a missing file in the stage) stays as it is.
func classify(err error) error {
	var se *sf.SnowflakeError
	if errors.As(err, &se) && strings.HasPrefix(se.SQLState, "22") {
		return fmt.Errorf("%w: %v", warehouse.ErrBadObject, err)
	}
	return err
}
