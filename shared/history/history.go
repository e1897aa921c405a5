// Package history reads past versions of customers and accounts from the warehouse: the SCD2
// marts dbt builds from the change log (gold.dim_customers, gold.dim_accounts), a past state
// as of gold's consistent cut (gold.cut: no source transaction is half in gold). One
// implementation serves both warehouses: the SQL is written in the dialect DuckDB and Snowflake
// share (positional ? parameters, unquoted identifiers, CAST), and a Querier runs it, over a
// database/sql pool (Snowflake, DB) or the local DuckDB file (*duckdb.Warehouse).
//
// Every value is scanned from database/sql's driver values, so a driver must give what gosnowflake
// and DuckDB give: int64 for integers, time.Time for timestamps, bool, and text for the balance
// (which the query casts): shared/warehouse/snowflakeapi does.
package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
)

// Querier runs a query with positional (?) arguments and hands its rows to read while it holds
// the connection. *duckdb.Warehouse is one; DB wraps a *sql.DB.
type Querier interface {
	QueryRows(ctx context.Context, query string, args []any, read func(*sql.Rows) error) error
}

// DB runs queries on a database/sql pool: the SQL API client's (snowflakeapi.Client.DB) in the
// API Lambda, gosnowflake's in the dialect test on fakesnow.
type DB struct{ *sql.DB }

// QueryRows implements Querier.
func (d DB) QueryRows(ctx context.Context, query string, args []any, read func(*sql.Rows) error) error {
	rows, err := d.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := read(rows); err != nil {
		return err
	}
	return rows.Err()
}

// Validity is when a version held: from its commit until the next version's commit.
type Validity struct {
	VersionID string     // the version's stable id, <entity id>@<log position>
	ValidFrom time.Time  // commit time of the version
	ValidTo   *time.Time // commit time of the next version; nil for the current one
	IsCurrent bool
	IsDeleted bool // the version is a delete; its fields are the row as it was deleted
}

// Customer is one version of a customer.
type Customer struct {
	bank.Customer
	Validity
}

// Account is one version of an account.
type Account struct {
	bank.Account
	Validity
}

// Page is a slice of a key's versions in log order: Limit versions after the version
// StartingAfter names (a VersionID; empty: from the first).
type Page struct {
	Limit         int
	StartingAfter string
}

// ErrBadCursor: a Page.StartingAfter that is not a version id of this key.
var ErrBadCursor = errors.New("not a version id of this key")

// Reader reads the marts. Schema is the schema that holds them (default gold).
type Reader struct {
	Q      Querier
	Schema string
}

// New reads the marts in the gold schema through q.
func New(q Querier) *Reader { return &Reader{Q: q, Schema: "gold"} }

// entity is what differs between customers and accounts: the mart, its key, its columns, and
// how a row becomes a version.
type entity[T versioned] struct {
	name, table, key, columns string
	// scan reads a row of columns and validityColumns, then the extra columns into extra.
	scan func(rows *sql.Rows, extra ...any) (T, error)
}

// validityColumns follow each entity's own columns (whose last is its version key) in every query.
const validityColumns = "effective_from, effective_to, is_current, is_deleted"

var customers = entity[Customer]{
	name: "customer", table: "dim_customers", key: "customer_id",
	columns: "customer_id, first_name, last_name, email, address_line, city, postal_code, country, " +
		"closed_at, created_at, updated_at, version, customer_version_key",
	scan: func(rows *sql.Rows, extra ...any) (Customer, error) {
		var c Customer
		var id string
		var addr, city, postal, country sql.NullString
		var closed, to sql.NullTime
		dest := append([]any{&id, &c.FirstName, &c.LastName, &c.Email, &addr, &city, &postal, &country,
			&closed, &c.CreatedAt, &c.UpdatedAt, &c.Version}, append(c.Validity.dest(&to), extra...)...)
		if err := rows.Scan(dest...); err != nil {
			return c, err
		}
		var err error
		if c.ID, err = uuid.Parse(id); err != nil {
			return c, fmt.Errorf("customer_id %q: %w", id, err)
		}
		c.AddressLine, c.City, c.PostalCode, c.Country = str(addr), str(city), str(postal), str(country)
		c.ClosedAt = tm(closed)
		c.Validity.finish(to)
		c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		return c, nil
	},
}

var accounts = entity[Account]{
	name: "account", table: "dim_accounts", key: "account_id",
	// Money leaves the warehouse as a decimal string, never through a float.
	columns: "account_id, customer_id, account_type, currency, nickname, cast(balance as varchar), " +
		"status, created_at, updated_at, version, account_version_key",
	scan: func(rows *sql.Rows, extra ...any) (Account, error) {
		var a Account
		var id, customer, typ, status, balance string
		var nickname sql.NullString
		var to sql.NullTime
		dest := append([]any{&id, &customer, &typ, &a.Currency, &nickname, &balance, &status,
			&a.CreatedAt, &a.UpdatedAt, &a.Version}, append(a.Validity.dest(&to), extra...)...)
		if err := rows.Scan(dest...); err != nil {
			return a, err
		}
		var err error
		if a.ID, err = uuid.Parse(id); err != nil {
			return a, fmt.Errorf("account_id %q: %w", id, err)
		}
		if a.CustomerID, err = uuid.Parse(customer); err != nil {
			return a, fmt.Errorf("account %s: customer_id %q: %w", id, customer, err)
		}
		if a.Balance, err = decimal.NewFromString(balance); err != nil {
			return a, fmt.Errorf("account %s: balance %q: %w", id, balance, err)
		}
		a.Type, a.Status, a.Nickname = bank.AccountType(typ), bank.AccountStatus(status), str(nickname)
		a.Validity.finish(to)
		a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
		return a, nil
	},
}

// versioned is a version of either entity.
type versioned interface{ validity() Validity }

func (v Validity) validity() Validity { return v }

// dest are the scan targets of validityColumns, after the version key; finish completes them.
func (v *Validity) dest(to *sql.NullTime) []any {
	return []any{&v.VersionID, &v.ValidFrom, to, &v.IsCurrent, &v.IsDeleted}
}

// The marts define is_current as valid_to IS NULL; going by it also covers a driver that reads
// a NULL TIMESTAMP_TZ as the epoch (gosnowflake on fakesnow does).
func (v *Validity) finish(to sql.NullTime) {
	v.ValidFrom = v.ValidFrom.UTC()
	if v.ValidTo = tm(to); v.IsCurrent {
		v.ValidTo = nil
	}
}

func str(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

func tm(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// CustomerVersions lists a customer's versions in log order; more tells whether others follow.
// A customer the warehouse never saw is bank.ErrNotFound.
func (r *Reader) CustomerVersions(ctx context.Context, id uuid.UUID, p Page) ([]Customer, bool, error) {
	return versions(ctx, r, customers, id, p)
}

// AccountVersions lists an account's versions in log order (see CustomerVersions).
func (r *Reader) AccountVersions(ctx context.Context, id uuid.UUID, p Page) ([]Account, bool, error) {
	return versions(ctx, r, accounts, id, p)
}

// CustomerAsOf is the customer as it was at t, read from gold's consistent cut, which it also
// returns: a t after the cut's commit time is answered as of the cut. bank.ErrNotFound when the
// customer did not exist then (never seen, not yet created, or deleted); ErrNoCut before any
// build has published a cut.
func (r *Reader) CustomerAsOf(ctx context.Context, id uuid.UUID, t time.Time) (Customer, Cut, error) {
	return asOf(ctx, r, customers, id, t)
}

// AccountAsOf is the account as it was at t (see CustomerAsOf).
func (r *Reader) AccountAsOf(ctx context.Context, id uuid.UUID, t time.Time) (Account, Cut, error) {
	return asOf(ctx, r, accounts, id, t)
}

// Cut is the position gold is a consistent cut at (the one row of gold.cut): every gold model
// holds exactly the source transactions committed at or before LSN, each wholly.
type Cut struct {
	LSN      int64     // commit position of the last source transaction wholly in gold
	CommitTS time.Time // its commit time
	BuiltAt  time.Time // when the build that published it started (Cut only; zero from as_of reads)
}

// Mart is a relation the Reader reads, in its schema, and the key it reads it by.
type Mart struct{ Table, Key string }

// Marts are the views the Reader reads (gold.cut, which it reads too, is one of their sources):
// what a warehouse that copies them for its readers (the local publication) copies.
func Marts() []Mart {
	return []Mart{{customers.table, customers.key}, {accounts.table, accounts.key}}
}

// ErrNoCut: the warehouse has no cut yet (no build has published gold.cut), so no past state can
// be answered consistently.
var ErrNoCut = errors.New("the warehouse has no consistent cut yet (no dbt build has published gold.cut)")

// Cut reads gold's cut. ErrNoCut when gold.cut does not exist, is empty, or holds no position yet.
func (r *Reader) Cut(ctx context.Context) (Cut, error) {
	var cuts []Cut
	q := "SELECT lsn, commit_ts, built_at FROM " + r.relation("cut")
	err := r.Q.QueryRows(ctx, q, nil, func(rows *sql.Rows) error {
		for rows.Next() {
			var c Cut
			var ts, built sql.NullTime
			if err := rows.Scan(&c.LSN, &ts, &built); err != nil {
				return err
			}
			c.CommitTS, c.BuiltAt = ts.Time.UTC(), built.Time.UTC()
			// A build that found no whole transaction yet publishes position 0 with no time.
			if ts.Valid && c.LSN > 0 {
				cuts = append(cuts, c)
			}
		}
		return nil
	})
	switch {
	// The statement names only gold.cut: DuckDB's "Table with name cut does not exist",
	// Snowflake's "Object 'GOLD.CUT' does not exist or not authorized" (error 002003).
	case err != nil && strings.Contains(strings.ToLower(err.Error()), "does not exist"):
		return Cut{}, fmt.Errorf("%w: %v", ErrNoCut, err)
	case err != nil:
		return Cut{}, fmt.Errorf("read %s: %w", r.relation("cut"), err)
	case len(cuts) == 0:
		return Cut{}, fmt.Errorf("%w: %s holds no position", ErrNoCut, r.relation("cut"))
	case len(cuts) > 1:
		return Cut{}, fmt.Errorf("%s holds %d rows, want one", r.relation("cut"), len(cuts))
	}
	return cuts[0], nil
}

func (r *Reader) relation(table string) string {
	schema := r.Schema
	if schema == "" {
		schema = "gold"
	}
	return schema + "." + table
}

// query runs q and scans every row with e.scan, its columns after the entity's into extra.
func query[T versioned](ctx context.Context, r *Reader, e entity[T], q string, extra []any, args ...any) ([]T, error) {
	var out []T
	err := r.Q.QueryRows(ctx, q, args, func(rows *sql.Rows) error {
		for rows.Next() {
			v, err := e.scan(rows, extra...)
			if err != nil {
				return fmt.Errorf("read %s: %w", r.relation(e.table), err)
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", e.name, err)
	}
	return out, nil
}

// NeverSeen is the error for the history of a key the warehouse has no version of ("customer",
// "account"): the API answers it for another customer's id too, so ids do not leak.
func NeverSeen(name string, id uuid.UUID) error {
	return fmt.Errorf("%s %s has no history in the warehouse: %w", name, id, bank.ErrNotFound)
}

// NotAt is the error for a key with no version at t (see NeverSeen).
func NotAt(name string, id uuid.UUID, t time.Time) error {
	return fmt.Errorf("%s %s did not exist at %s (or the warehouse has not seen it yet): %w",
		name, id, t.UTC().Format(time.RFC3339Nano), bank.ErrNotFound)
}

func versions[T versioned](ctx context.Context, r *Reader, e entity[T], id uuid.UUID, p Page) ([]T, bool, error) {
	after := int64(-1)
	if p.StartingAfter != "" {
		key, lsn, ok := strings.Cut(p.StartingAfter, "@")
		n, err := strconv.ParseInt(lsn, 10, 64)
		if !ok || key != id.String() || err != nil {
			return nil, false, fmt.Errorf("starting_after %q: %w %s", p.StartingAfter, ErrBadCursor, id)
		}
		after = n
	}
	limit := max(p.Limit, 1)
	q := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s = ? AND lsn > ? ORDER BY lsn LIMIT %d",
		e.columns, validityColumns, r.relation(e.table), e.key, limit+1)
	rows, err := query(ctx, r, e, q, nil, id.String(), after)
	if err != nil {
		return nil, false, err
	}
	if len(rows) == 0 && after < 0 {
		return nil, false, NeverSeen(e.name, id)
	}
	if len(rows) > limit {
		return rows[:limit], true, nil
	}
	return rows, false, nil
}

// instant is how a time is bound: a string both dialects cast to a timestamp with time zone
// (Snowflake would read a bound time.Time as TIMESTAMP_NTZ in the session's time zone).
func instant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999-07:00") }

// asOfQuery reads the version valid at a time, no later than the cut, and the cut itself in the
// same statement (so the same snapshot of gold, while a build may be replacing it). The cut's
// columns are renamed so that lsn stays the dimension's.
const asOfQuery = `SELECT %s, %s, cut_lsn, cut_commit_ts FROM %s
	CROSS JOIN (SELECT lsn AS cut_lsn, commit_ts AS cut_commit_ts FROM %s) c
	WHERE %s = ? AND effective_from <= CAST(? AS TIMESTAMPTZ) AND lsn <= cut_lsn ORDER BY lsn DESC LIMIT 1`

func asOf[T versioned](ctx context.Context, r *Reader, e entity[T], id uuid.UUID, t time.Time) (T, Cut, error) {
	var zero T
	var cut Cut
	// The latest version committed at or before t (and in the cut) is the one valid at t.
	q := fmt.Sprintf(asOfQuery, e.columns, validityColumns, r.relation(e.table), r.relation("cut"), e.key)
	rows, err := query(ctx, r, e, q, []any{&cut.LSN, &cut.CommitTS}, id.String(), instant(t))
	if err != nil || len(rows) == 0 {
		// No row: no version then, or no cut at all; the second read tells which.
		c, cerr := r.Cut(ctx)
		switch {
		case cerr != nil && (err == nil || errors.Is(cerr, ErrNoCut)):
			return zero, Cut{}, cerr
		case err != nil:
			return zero, Cut{}, err
		}
		return zero, c, NotAt(e.name, id, t)
	}
	cut.CommitTS = cut.CommitTS.UTC()
	if v := rows[0].validity(); v.IsDeleted {
		return zero, cut, fmt.Errorf("%s %s was deleted at %s, before %s: %w", e.name, id,
			v.ValidFrom.Format(time.RFC3339Nano), t.UTC().Format(time.RFC3339Nano), bank.ErrNotFound)
	}
	return rows[0], cut, nil
}
