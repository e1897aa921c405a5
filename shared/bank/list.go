package bank

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MaxPageSize is the largest page a list returns.
const MaxPageSize = 100

// Page asks for one page of a list in creation order: up to Limit rows that come after the row
// StartingAfter (nil for the first page). Creation order is stable, so rows added while a client
// pages through are never skipped or shown twice.
type Page struct {
	Limit         int
	StartingAfter *uuid.UUID
}

// Every filter's Owner, when not nil, confines the list to what that customer may see: itself,
// its accounts, the transactions touching them. A cursor (Page.StartingAfter) outside it names
// no row, as an unknown id does, so a list never tells that another customer's id exists.

// CustomerFilter narrows ListCustomers. An empty Email matches every open customer.
type CustomerFilter struct {
	Email string
	Owner *uuid.UUID
	Page
}

// AccountFilter narrows ListAccounts; nil fields match everything.
type AccountFilter struct {
	CustomerID *uuid.UUID
	Status     *AccountStatus
	Owner      *uuid.UUID
	Page
}

// TransactionFilter narrows ListTransactions; nil fields match everything. AccountID matches
// both sides of a transfer. The time range is [From, To).
type TransactionFilter struct {
	AccountID *uuid.UUID
	Type      *TransactionType
	From, To  *time.Time
	Owner     *uuid.UUID
	Page
}

// ListCustomers returns a page of open customers and whether more follow.
func ListCustomers(ctx context.Context, q Querier, f CustomerFilter) ([]Customer, bool, error) {
	l := listQuery{table: "customers", id: "customer_id", columns: customerColumns, conds: []string{"closed_at IS NULL"}}
	if f.Email != "" {
		l.where("lower(email) = lower(?)", strings.TrimSpace(f.Email))
	}
	if f.Owner != nil {
		l.confine("customer_id = ?", *f.Owner)
	}
	return list(ctx, q, l, f.Page, scanCustomer)
}

// ListAccounts returns a page of accounts and whether more follow.
func ListAccounts(ctx context.Context, q Querier, f AccountFilter) ([]Account, bool, error) {
	l := listQuery{table: "accounts", id: "account_id", columns: accountColumns}
	if f.CustomerID != nil {
		l.where("customer_id = ?", *f.CustomerID)
	}
	if f.Status != nil {
		l.where("status = ?", *f.Status)
	}
	if f.Owner != nil {
		l.confine("customer_id = ?", *f.Owner)
	}
	return list(ctx, q, l, f.Page, scanAccount)
}

// ListTransactions returns a page of ledger rows and whether more follow.
func ListTransactions(ctx context.Context, q Querier, f TransactionFilter) ([]Transaction, bool, error) {
	l := listQuery{table: "transactions", id: "transaction_id", columns: transactionColumns}
	if f.AccountID != nil {
		l.where("(account_id = ? OR related_account_id = ?)", *f.AccountID, *f.AccountID)
	}
	if f.Type != nil {
		l.where("transaction_type = ?", *f.Type)
	}
	if f.From != nil {
		l.where("created_at >= ?", *f.From)
	}
	if f.To != nil {
		l.where("created_at < ?", *f.To)
	}
	if f.Owner != nil {
		const owned = "(SELECT account_id FROM accounts WHERE customer_id = ?)"
		l.confine("(account_id IN "+owned+" OR related_account_id IN "+owned+")", *f.Owner, *f.Owner)
	}
	return list(ctx, q, l, f.Page, scanTransaction)
}

// listQuery builds a keyset-paginated SELECT; "?" in a condition stands for the next argument.
type listQuery struct {
	table, id, columns string
	conds              []string
	args               []any
	confined           []func(*listQuery) // conditions the cursor's row must meet too
}

// confine adds a condition that the cursor's row must meet as well as every row listed.
func (l *listQuery) confine(cond string, args ...any) {
	l.where(cond, args...)
	l.confined = append(l.confined, func(c *listQuery) { c.where(cond, args...) })
}

func (l *listQuery) where(cond string, args ...any) {
	for _, a := range args {
		l.args = append(l.args, a)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(l.args)), 1)
	}
	l.conds = append(l.conds, cond)
}

func list[T any](ctx context.Context, q Querier, l listQuery, p Page, scan func(pgx.Row) (T, error)) ([]T, bool, error) {
	if p.Limit < 1 || p.Limit > MaxPageSize {
		return nil, false, &FieldError{Field: "limit", In: "query", Reason: fmt.Sprintf("must be between 1 and %d", MaxPageSize)}
	}
	if p.StartingAfter != nil {
		var created time.Time
		cursor := listQuery{}
		cursor.where(l.id+" = ?", *p.StartingAfter)
		for _, add := range l.confined {
			add(&cursor)
		}
		err := q.QueryRow(ctx, "SELECT created_at FROM "+l.table+" WHERE "+strings.Join(cursor.conds, " AND "), cursor.args...).Scan(&created)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, false, &FieldError{Field: "starting_after", In: "query", Reason: "names no row of " + l.table}
		}
		if err != nil {
			return nil, false, fmt.Errorf("read cursor of %s: %w", l.table, err)
		}
		l.where("(created_at, "+l.id+") > (?, ?)", created, *p.StartingAfter)
	}
	sql := "SELECT " + l.columns + " FROM " + l.table
	if len(l.conds) > 0 {
		sql += " WHERE " + strings.Join(l.conds, " AND ")
	}
	l.args = append(l.args, p.Limit+1) // one more tells whether another page follows
	sql += " ORDER BY created_at, " + l.id + " LIMIT $" + strconv.Itoa(len(l.args))
	rows, err := q.Query(ctx, sql, l.args...)
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", l.table, err)
	}
	defer rows.Close()
	out := make([]T, 0, p.Limit+1)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, false, fmt.Errorf("list %s: %w", l.table, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list %s: %w", l.table, err)
	}
	if len(out) > p.Limit {
		return out[:p.Limit], true, nil
	}
	return out, false, nil
}
