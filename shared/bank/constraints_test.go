package bank_test

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// schemaConstraints reads every constraint a migrated database holds, with the SQLSTATE its
// violation raises: pg_constraint (checks, primary and unique keys, foreign keys), unique indexes
// that back no constraint, and the constraint names the triggers' functions raise.
func schemaConstraints(t *testing.T, db *pgtest.DB) map[string]string {
	t.Helper()
	ctx := context.Background()
	found := map[string]string{}
	rows, err := db.Pool.Query(ctx, `
		SELECT con.conname, CASE con.contype WHEN 'c' THEN '23514' WHEN 'f' THEN '23503'
		                                     WHEN 'x' THEN '23P01' ELSE '23505' END
		FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
		WHERE n.nspname = 'public' AND con.contype IN ('c', 'f', 'p', 'u', 'x')
		UNION ALL
		SELECT ic.relname, '23505'
		FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
		WHERE n.nspname = 'public' AND i.indisunique
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)`)
	if err != nil {
		t.Fatalf("read pg_constraint: %v", err)
	}
	for rows.Next() {
		var name, code string
		if err := rows.Scan(&name, &code); err != nil {
			t.Fatalf("scan constraint: %v", err)
		}
		found[name] = code
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read pg_constraint: %v", err)
	}
	// RAISE ... USING ERRCODE = '<condition>', CONSTRAINT = '<name>' in a trigger function.
	raise := regexp.MustCompile(`(?is)ERRCODE\s*=\s*'(\w+)'\s*,\s*CONSTRAINT\s*=\s*'(\w+)'`)
	codes := map[string]string{"check_violation": "23514", "restrict_violation": "23001"}
	var srcs []string
	rows, err = db.Pool.Query(ctx, `SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'public' AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')`)
	if err != nil {
		t.Fatalf("read pg_proc: %v", err)
	}
	for rows.Next() {
		var src string
		if err := rows.Scan(&src); err != nil {
			t.Fatalf("scan function: %v", err)
		}
		srcs = append(srcs, src)
	}
	for _, src := range srcs {
		for _, m := range raise.FindAllStringSubmatch(src, -1) {
			code, ok := codes[strings.ToLower(m[1])]
			if !ok {
				t.Fatalf("a trigger raises %s with the condition %s: add its SQLSTATE to this test", m[2], m[1])
			}
			found[m[2]] = code
		}
	}
	// Sanity: the catalog query sees the schema (so an empty answer cannot pass the test).
	for _, want := range []string{"customers_email_check", "customers_email_key", "accounts_customer_id_fkey", "transactions_pkey", "transactions_immutable"} {
		if _, ok := found[want]; !ok {
			t.Fatalf("the catalog query did not find %s; found %v", want, found)
		}
	}
	return found
}

// TestEveryConstraintHasAMeaning reads every constraint of the migrated schema and fails on one
// without a meaning in bank.Constraints (or a meaning for one the schema no longer has). Each
// violation, built as Postgres reports it, translates to its meaning without the database's text.
func TestEveryConstraintHasAMeaning(t *testing.T) {
	found := schemaConstraints(t, pgtest.New(t))
	meanings := bank.Constraints()
	var names []string
	for name := range found {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c, ok := meanings[name]
		if !ok {
			t.Errorf("constraint %s (SQLSTATE %s) has no case in bank.Constraints: say what it means to a client", name, found[name])
			continue
		}
		const dbText = `new row for relation "secret_table" violates check constraint; DETAIL: Failing row contains (SECRET)`
		pg := &pgconn.PgError{Code: found[name], ConstraintName: name, Message: dbText, Detail: dbText}
		in := errWrap{"insert row", pg}
		got := bank.Translate(in)
		switch {
		case c.Internal != "":
			if got != error(in) {
				t.Errorf("%s is internal (%s) but translated to %v", name, c.Internal, got)
			}
		case strings.Contains(got.Error(), "SECRET") || strings.Contains(got.Error(), "violates"):
			t.Errorf("%s: the database's text reaches the client: %q", name, got)
		case !strings.Contains(got.Error(), c.Field) && c.Reason != "":
			t.Errorf("%s: %q does not name the field %s", name, got, c.Field)
		case c.Err != nil && !errors.Is(got, c.Err):
			t.Errorf("%s: translated to %v, want %v", name, got, c.Err)
		case c.Err == nil && !errors.As(got, new(*bank.FieldError)):
			t.Errorf("%s: translated to %v, want a *bank.FieldError", name, got)
		}
		if c.Internal == "" && c.Field == "" {
			t.Errorf("%s: a meaning without a field", name)
		}
	}
	for name := range meanings {
		if _, ok := found[name]; !ok {
			t.Errorf("bank.Constraints has %s, which the schema does not: remove it", name)
		}
	}
}

// TestTranslateHidesDatabaseText: the other database errors the API can meet say what is wrong
// without the database's message.
func TestTranslateHidesDatabaseText(t *testing.T) {
	cases := []struct {
		code, column, want string
	}{
		{"23502", "email", "email is required"},
		{"22001", "city", "city is too long"},
		{"22P02", "account_type", "account_type has an invalid value"},
		{"22P02", "", "a value has an invalid value"},
		{"22021", "", "text must be valid UTF-8 without NUL bytes"},
	}
	for _, tc := range cases {
		got := bank.Translate(errWrap{"q", &pgconn.PgError{Code: tc.code, ColumnName: tc.column, Message: "SECRET"}})
		if !strings.Contains(got.Error(), tc.want) || strings.Contains(got.Error(), "SECRET") || !errors.Is(got, bank.ErrInvalid) {
			t.Errorf("%s on %q: %v, want %q as an ErrInvalid", tc.code, tc.column, got, tc.want)
		}
	}
	other := &pgconn.PgError{Code: "40001"}
	if got := bank.Translate(other); got != error(other) {
		t.Errorf("a serialization failure was translated to %v", got)
	}
}

type errWrap struct {
	ctx string
	err error
}

func (e errWrap) Error() string { return e.ctx + ": " + e.err.Error() }
func (e errWrap) Unwrap() error { return e.err }
