// Package warehouse holds what the two warehouse implementations share: the object to load, the
// outcome of a load, the RAW table layout, and the errors the loader sorts into metrics.
//
// The implementations live in their own packages so that a binary links only the one it uses:
// shared/warehouse/duckdb (embedded, cgo, local CLI only) and shared/warehouse/snowflake (the
// Lambda). Both load one bronze object per transaction, together with its row in the load ledger
// raw._load_ledger (object_key, etag, source_table, row_count, loaded_at).
package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// DefaultTables are the bronze tables loaded unless configured otherwise: the source tables,
// the capture's records of completed incremental snapshots (bronze.SnapshotWindow) and Debezium's
// transaction boundaries (bronze.TransactionMetadataTable).
var DefaultTables = append(bronze.SourceTables(), bronze.SnapshotWindowsTable, bronze.TransactionMetadataTable)

// Object is one bronze object to load into the RAW table of its source table.
type Object struct {
	Key   string // bronze key, e.g. bronze/accounts/dt=2026-11-25/fin.public.accounts-0-0-99.parquet
	ETag  string // the object's ETag without quotes, as the event or the store reported it
	Table string // the source table: rows go to raw.<Table>
	// Fetch copies the object's bytes to w and returns the ETag of what it copied. A warehouse
	// that reads the bucket itself (Snowflake with an external stage) never calls it.
	Fetch func(ctx context.Context, w io.Writer) (etag string, err error)
}

// Result is what one Load did.
type Result struct {
	Rows      int64 // rows written to the RAW table
	Duplicate bool  // the object was already loaded with this ETag: nothing was written
	Replaced  bool  // the key was loaded before with another ETag: its old rows were replaced
}

// Errors a Load wraps, so the loader can name what went wrong and count it. The permanent ones
// are retry.PermanentError values: retry.IsPermanent holds for any error wrapping them.
var (
	// ErrBadObject: the object is not a readable bronze Parquet file (corrupt, wrong columns,
	// a row image that is not JSON). Permanent: the object must be rewritten.
	ErrBadObject = retry.Permanent(errors.New("not a readable bronze object"))
	// ErrUnknownTable: the object belongs to a source table the warehouse is not configured
	// for. Permanent: the configuration must change.
	ErrUnknownTable = retry.Permanent(errors.New("unknown table"))
	// ErrNothingLoaded: the load found no rows in an object that exists (every bronze object
	// has rows). Transient, not a ledger entry: the load is tried again and then fails where
	// it is seen.
	ErrNothingLoaded = errors.New("nothing loaded from an object that exists")
)

// Column is one column of a RAW table, typed for each warehouse.
type Column struct {
	Name      string
	DuckDB    string
	Snowflake string
}

// RecordColumns are the columns of bronze.Record in file order; a RAW table has these, then
// MetaColumns.
var RecordColumns = []Column{
	{"topic", "VARCHAR", "VARCHAR"},
	{"partition", "INTEGER", "NUMBER(10,0)"},
	{"offset", "BIGINT", "NUMBER(19,0)"},
	{"key", "VARCHAR", "VARCHAR"},
	{"op", "VARCHAR", "VARCHAR"},
	{"lsn", "BIGINT", "NUMBER(19,0)"},
	{"tx_id", "BIGINT", "NUMBER(19,0)"},
	{"commit_ts_us", "BIGINT", "NUMBER(19,0)"},
	{"event_ts_ms", "BIGINT", "NUMBER(19,0)"},
	{"snapshot", "VARCHAR", "VARCHAR"},
	{"source_schema", "VARCHAR", "VARCHAR"},
	{"source_table", "VARCHAR", "VARCHAR"},
	{"before", "JSON", "VARIANT"},
	{"after", "JSON", "VARIANT"},
}

// MetaColumns are what the loader adds to each row: where it came from and when it was loaded.
var MetaColumns = []Column{
	{"_object_key", "VARCHAR", "VARCHAR"},
	{"_loaded_at", "TIMESTAMPTZ", "TIMESTAMP_TZ"},
}

// LedgerTable is the load ledger's name inside the RAW schema.
const LedgerTable = "_load_ledger"

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CheckTables validates configured table names, which become SQL identifiers.
func CheckTables(tables []string) error {
	if len(tables) == 0 {
		return errors.New("no tables configured to load")
	}
	for _, t := range tables {
		if !tableName.MatchString(t) {
			return fmt.Errorf("table name %q: want lower-case letters, digits and _", t)
		}
	}
	return nil
}

// ParseTables reads a comma-separated table list (LOADER_TABLES); empty means DefaultTables.
func ParseTables(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return DefaultTables, nil
	}
	var tables []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tables = append(tables, t)
		}
	}
	return tables, CheckTables(tables)
}

// NormalizeETag strips the quotes S3 puts around ETags, so events and GetObject agree.
func NormalizeETag(etag string) string {
	return strings.Trim(strings.TrimSpace(etag), `"`)
}
