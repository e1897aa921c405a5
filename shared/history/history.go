// Package history reads past versions of customers and accounts from the warehouse: the SCD2
// marts dbt builds from the change log (gold.dim_customers, gold.dim_accounts). One
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
	scan                      func(*sql.Rows) (T, error)
}

// validityColumns follow each entity's own columns (whose last is its version key) in every query.
const validityColumns = "effective_from, effective_to, is_current, is_deleted"

var customers = entity[Customer]{
	name: "customer", table: "dim_customers", key: "customer_id",
	columns: "customer_id, first_name, last_name, email, address_line, city, postal_code, country, " +
		"closed_at, created_at, updated_at, version, customer_version_key",
	scan: func(rows *sql.Rows) (Customer, error) {
		var c Customer
		var id string
		var addr, city, postal, country sql.NullString
		var closed, to sql.NullTime
		dest := append([]any{&id, &c.FirstName, &c.LastName, &c.Email, &addr, &city, &postal, &country,
			&closed, &c.CreatedAt, &c.UpdatedAt, &c.Version}, c.Validity.dest(&to)...)
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
	scan: func(rows *sql.Rows) (Account, error) {
		var a Account
		var id, customer, typ, status, balance string
		var nickname sql.NullString
		var to sql.NullTime
		dest := append([]any{&id, &customer, &typ, &a.Currency, &nickname, &balance, &status,
			&a.CreatedAt, &a.UpdatedAt, &a.Version}, a.Validity.dest(&to)...)
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

// CustomerAsOf is the customer as it was at t. bank.ErrNotFound when it did not exist then
// (never seen, not yet created, or deleted).
func (r *Reader) CustomerAsOf(ctx context.Context, id uuid.UUID, t time.Time) (Customer, error) {
	return asOf(ctx, r, customers, id, t)
}

// AccountAsOf is the account as it was at t (see CustomerAsOf).
func (r *Reader) AccountAsOf(ctx context.Context, id uuid.UUID, t time.Time) (Account, error) {
	return asOf(ctx, r, accounts, id, t)
}

func (r *Reader) relation(table string) string {
	schema := r.Schema
	if schema == "" {
		schema = "gold"
	}
	return schema + "." + table
}

// query runs q and scans every row with e.scan.
func query[T versioned](ctx context.Context, r *Reader, e entity[T], q string, args ...any) ([]T, error) {
	var out []T
	err := r.Q.QueryRows(ctx, q, args, func(rows *sql.Rows) error {
		for rows.Next() {
			v, err := e.scan(rows)
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
	rows, err := query(ctx, r, e, q, id.String(), after)
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

func asOf[T versioned](ctx context.Context, r *Reader, e entity[T], id uuid.UUID, t time.Time) (T, error) {
	var zero T
	// The latest version committed at or before t is the one valid at t.
	q := fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s = ? AND effective_from <= CAST(? AS TIMESTAMPTZ) ORDER BY lsn DESC LIMIT 1",
		e.columns, validityColumns, r.relation(e.table), e.key)
	rows, err := query(ctx, r, e, q, id.String(), instant(t))
	if err != nil {
		return zero, err
	}
	at := t.UTC().Format(time.RFC3339Nano)
	if len(rows) == 0 {
		return zero, NotAt(e.name, id, t)
	}
	if v := rows[0].validity(); v.IsDeleted {
		return zero, fmt.Errorf("%s %s was deleted at %s, before %s: %w", e.name, id, v.ValidFrom.Format(time.RFC3339Nano), at, bank.ErrNotFound)
	}
	return rows[0], nil
}
