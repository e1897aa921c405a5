package bank

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/money"
)

const accountColumns = `account_id, customer_id, account_type, currency, nickname, balance, status,
	created_at, updated_at, version`

func scanAccount(row pgx.Row) (Account, error) {
	// Every GET /accounts/{id} pays for this scan, so each column lands in a type pgx decodes
	// directly from the binary row: uuid.UUID and decimal.Decimal would go through
	// sql.Scanner and a text round trip, and named string types through reflection.
	r := accountRows.Get().(*accountRow)
	defer accountRows.Put(r)
	if err := row.Scan(r.dest[:]...); err != nil {
		return Account{}, err // a pooled row may hold another row's values: none leave here
	}
	a := Account{ID: r.id.Bytes, CustomerID: r.customer.Bytes, Type: AccountType(r.typ), Currency: r.currency,
		Balance: decimal.Decimal(r.balance), Status: AccountStatus(r.status), CreatedAt: r.created,
		UpdatedAt: r.updated, Version: r.version}
	if r.nickname.Valid {
		nickname := r.nickname.String
		a.Nickname = &nickname
	}
	return a, nil
}

// accountRow is where scanAccount lands a row. pgx takes each destination as an interface,
// so locals would each move to the heap: eight allocations a row (the destinations and their
// list), on every GET /accounts/{id}. A pooled row, its destination list built once, pays none.
type accountRow struct {
	id, customer     pgtype.UUID
	typ, status      string
	currency         string
	nickname         pgtype.Text
	balance          pgxdecimal.Decimal
	created, updated time.Time
	version          int64
	dest             [10]any // in accountColumns' order
}

var accountRows = sync.Pool{New: func() any {
	r := new(accountRow)
	r.dest = [...]any{&r.id, &r.customer, &r.typ, &r.currency, &r.nickname, &r.balance, &r.status,
		&r.created, &r.updated, &r.version}
	return r
}}

// uuidArg passes id as a binary uuid parameter (uuid.UUID alone is encoded through
// driver.Valuer as text, after a failed plan that builds an error).
func uuidArg(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// NewAccount asks to open an account. Its balance starts at zero: money arrives by posting.
type NewAccount struct {
	ID         uuid.UUID // zero lets the database choose
	CustomerID uuid.UUID
	Type       AccountType
	Currency   string
	Nickname   *string
}

// OpenAccount opens an account for an open customer, inside tx.
func OpenAccount(ctx context.Context, tx pgx.Tx, n NewAccount) (Account, error) {
	if !n.Type.Valid() {
		return Account{}, fmt.Errorf("account_type %q: %w", n.Type, ErrInvalid)
	}
	if err := money.CheckCurrency(n.Currency); err != nil {
		return Account{}, fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	// FOR SHARE keeps the customer from being closed while the account is opened.
	var closed bool
	err := tx.QueryRow(ctx, `SELECT closed_at IS NOT NULL FROM customers WHERE customer_id = $1 FOR SHARE`, n.CustomerID).Scan(&closed)
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, fmt.Errorf("customer %s: %w", n.CustomerID, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("read customer %s: %w", n.CustomerID, err)
	}
	if closed {
		return Account{}, fmt.Errorf("customer %s: %w", n.CustomerID, ErrCustomerClosed)
	}
	var id any
	if n.ID != uuid.Nil {
		id = n.ID
	}
	a, err := scanAccount(tx.QueryRow(ctx, `INSERT INTO accounts (account_id, customer_id, account_type, currency, nickname)
		VALUES (coalesce($1, uuidv7()), $2, $3, $4, $5) RETURNING `+accountColumns,
		id, n.CustomerID, n.Type, n.Currency, n.Nickname))
	if err != nil {
		return Account{}, fmt.Errorf("open account: %w", Translate(err))
	}
	return a, nil
}

// OpeningDeposit is the description of an opening deposit when the caller gives none.
const OpeningDeposit = "Opening deposit"

// OpenWithDeposit opens an account and posts its first deposit of amount inside tx, as one
// change: the balance starts at zero and the money arrives as a DEPOSIT in the ledger, like any
// other. description names the deposit (nil: OpeningDeposit). It returns the account as it
// stands after the deposit, and the deposit.
func OpenWithDeposit(ctx context.Context, tx pgx.Tx, n NewAccount, amount decimal.Decimal, description *string) (Account, Transaction, error) {
	a, err := OpenAccount(ctx, tx, n)
	if err != nil {
		return Account{}, Transaction{}, err
	}
	if description == nil {
		d := OpeningDeposit
		description = &d
	}
	t, err := Post(ctx, tx, Posting{AccountID: a.ID, Type: Deposit, Amount: amount, Description: description})
	if err != nil {
		return Account{}, Transaction{}, fmt.Errorf("opening deposit: %w", err)
	}
	if a, err = GetAccount(ctx, tx, a.ID); err != nil {
		return Account{}, Transaction{}, err
	}
	return a, t, nil
}

// GetAccount reads one account.
func GetAccount(ctx context.Context, q Querier, id uuid.UUID) (Account, error) {
	a, err := scanAccount(q.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE account_id = $1`, uuidArg(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, fmt.Errorf("account %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("read account %s: %w", id, err)
	}
	return a, nil
}

// GetAccountsSQL reads the accounts ids names in one query, its one parameter the ids as a
// uuid[] (an id with no account has no row; repeated ids are read once): for a caller that sends
// it on a connection of its own (the API's pipelined reads), scanning each row with ScanAccount.
const GetAccountsSQL = `SELECT ` + accountColumns + ` FROM accounts WHERE account_id = ANY($1)`

// ScanAccount reads one row of GetAccountsSQL.
func ScanAccount(row pgx.Row) (Account, error) { return scanAccount(row) }

// AccountChange lists the fields of an account that may change; nil leaves a field as it is.
// The balance is not among them: it moves only by posting.
type AccountChange struct {
	Type     *AccountType
	Status   *AccountStatus
	Nickname *string
}

// UpdateAccount applies c inside tx. When expectedVersion is not nil the account must still be
// at that version (optimistic concurrency). Closing (INACTIVE) needs a zero balance.
func UpdateAccount(ctx context.Context, tx pgx.Tx, id uuid.UUID, c AccountChange, expectedVersion *int64) (Account, error) {
	cur, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE account_id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, fmt.Errorf("account %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("read account %s: %w", id, err)
	}
	if expectedVersion != nil && *expectedVersion != cur.Version {
		return Account{}, fmt.Errorf("account %s is at version %d, not %d: %w", id, cur.Version, *expectedVersion, ErrVersionMismatch)
	}
	next := cur
	if c.Type != nil {
		if !c.Type.Valid() {
			return Account{}, fmt.Errorf("account_type %q: %w", *c.Type, ErrInvalid)
		}
		next.Type = *c.Type
	}
	if c.Status != nil {
		if !c.Status.Valid() {
			return Account{}, fmt.Errorf("status %q: %w", *c.Status, ErrInvalid)
		}
		next.Status = *c.Status
	}
	if c.Nickname != nil {
		next.Nickname = c.Nickname
	}
	if next.Status == Inactive && cur.Status != Inactive && !cur.Balance.IsZero() {
		return Account{}, fmt.Errorf("close account %s holding %s %s: %w", id, money.Format(cur.Balance), cur.Currency, ErrBalanceNotZero)
	}
	if next.Type == cur.Type && next.Status == cur.Status && equalPtr(next.Nickname, cur.Nickname) {
		return cur, nil // nothing changes: no new version, no change event
	}
	a, err := scanAccount(tx.QueryRow(ctx, `UPDATE accounts SET account_type = $2, status = $3, nickname = $4
		WHERE account_id = $1 RETURNING `+accountColumns, id, next.Type, next.Status, next.Nickname))
	if err != nil {
		return Account{}, fmt.Errorf("update account %s: %w", id, Translate(err))
	}
	return a, nil
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
