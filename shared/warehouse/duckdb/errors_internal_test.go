package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	duckdriver "github.com/duckdb/duckdb-go/v2"
)

// The decisions read DuckDB's error type, not its text: each query below fails in DuckDB itself
// and must be told apart by isDuckDB alone.
func TestDuckDBErrorTypes(t *testing.T) {
	conn, err := duckdriver.NewConnector("", nil)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	missing := filepath.Join(t.TempDir(), "absent.parquet")
	for _, tc := range []struct {
		name      string
		query     string
		catalog   bool // a model that is not there: read waits for dbt and tries again
		io        bool // an IO error: lockHint explains it
		wrappedIn string
	}{
		{"missing table", "SELECT * FROM no_such_model", true, false, ""},
		{"missing table, wrapped", "SELECT * FROM main.no_such_model", true, false, "read %s: %w"},
		{"missing file", fmt.Sprintf("SELECT * FROM read_parquet('%s')", missing), false, true, ""},
		{"syntax", "SELEC 1", false, false, ""},
		{"conversion", "SELECT CAST('x' AS INTEGER)", false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.ExecContext(context.Background(), tc.query)
			if err == nil {
				t.Fatalf("%s: no error", tc.query)
			}
			if tc.wrappedIn != "" {
				err = fmt.Errorf(tc.wrappedIn, "x", err)
			}
			if got := isDuckDB(err, duckdriver.ErrorTypeCatalog); got != tc.catalog {
				t.Errorf("catalog error = %v, want %v (err: %v)", got, tc.catalog, err)
			}
			if got := lockHint(err) != ""; got != tc.io {
				t.Errorf("lock hint given = %v, want %v (err: %v)", got, tc.io, err)
			}
		})
	}
	if isDuckDB(fmt.Errorf("x: %w", context.DeadlineExceeded), duckdriver.ErrorTypeCatalog) {
		t.Error("a deadline is not a DuckDB error")
	}
}

// Only a failure of the object's content makes a load a bad object (permanent); a failure of
// the warehouse itself may pass and is tried again.
func TestAboutContent(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"not Parquet", &duckdriver.Error{Type: duckdriver.ErrorTypeInvalidInput, Msg: "Invalid Input Error: No magic bytes found"}, true},
		{"value does not convert", &duckdriver.Error{Type: duckdriver.ErrorTypeConversion, Msg: "Conversion Error"}, true},
		{"missing column", &duckdriver.Error{Type: duckdriver.ErrorTypeBinder, Msg: "Binder Error"}, true},
		{"write conflict", &duckdriver.Error{Type: duckdriver.ErrorTypeTransaction, Msg: "TransactionContext Error: Conflict"}, false},
		{"out of memory", fmt.Errorf("exec: %w", &duckdriver.Error{Type: duckdriver.ErrorTypeOutOfMemory, Msg: "Out of Memory Error"}), false},
		{"interrupted", &duckdriver.Error{Type: duckdriver.ErrorTypeInterrupt, Msg: "INTERRUPT Error"}, false},
		{"not a DuckDB error", fmt.Errorf("sql: connection is already closed"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := aboutContent(tc.err); got != tc.want {
				t.Errorf("aboutContent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
