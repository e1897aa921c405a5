// Package bank holds the money rules of the system of record, once: opening accounts, posting
// deposits, withdrawals and transfers with ordered row locks, reversing postings, and the
// lifecycle of customers and accounts. The generator and the API both post through it, so a
// balance always equals the sum of its postings.
package bank

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"
)

// Querier is what this package needs of a pool, a connection or a transaction. Functions that
// must be atomic take a pgx.Tx instead, so callers can add their own writes (an idempotency
// record, say) to the same database transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// AccountType, AccountStatus, TransactionType and TransactionStatus mirror the database enums.
type (
	AccountType       string
	AccountStatus     string
	TransactionType   string
	TransactionStatus string
)

const (
	Checking AccountType = "CHECKING"
	Savings  AccountType = "SAVINGS"

	Active   AccountStatus = "ACTIVE"
	Inactive AccountStatus = "INACTIVE"

	Deposit    TransactionType = "DEPOSIT"
	Withdrawal TransactionType = "WITHDRAWAL"
	Transfer   TransactionType = "TRANSFER"

	Completed TransactionStatus = "COMPLETED"
	Reversed  TransactionStatus = "REVERSED"
)

// Valid reports whether the value is one the database accepts.
func (t AccountType) Valid() bool       { return t == Checking || t == Savings }
func (s AccountStatus) Valid() bool     { return s == Active || s == Inactive }
func (t TransactionType) Valid() bool   { return t == Deposit || t == Withdrawal || t == Transfer }
func (s TransactionStatus) Valid() bool { return s == Completed || s == Reversed }

// Customer is a row of customers. ClosedAt is set once a customer who held accounts leaves.
type Customer struct {
	ID          uuid.UUID
	FirstName   string
	LastName    string
	Email       string
	AddressLine *string
	City        *string
	PostalCode  *string
	Country     *string
	ClosedAt    *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
}

// Account is a row of accounts.
type Account struct {
	ID         uuid.UUID
	CustomerID uuid.UUID
	Type       AccountType
	Currency   string
	Nickname   *string
	Balance    decimal.Decimal
	Status     AccountStatus
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Version    int64
}

// Transaction is a row of the ledger. A transfer moves Amount from AccountID to
// RelatedAccountID. A reversal points at the transaction it undoes through ReversesID.
type Transaction struct {
	ID               uuid.UUID
	AccountID        uuid.UUID
	Type             TransactionType
	Amount           decimal.Decimal
	Currency         string
	RelatedAccountID *uuid.UUID
	Status           TransactionStatus
	Description      *string
	Category         *string
	ReversesID       *uuid.UUID
	CreatedAt        time.Time
	UpdatedAt        time.Time
	Version          int64
}

// Errors of the money and lifecycle rules. They come wrapped with the ids involved; test with
// errors.Is.
var (
	ErrNotFound           = errors.New("not found")
	ErrInsufficientFunds  = errors.New("insufficient funds")
	ErrAccountInactive    = errors.New("account is inactive")
	ErrCurrencyMismatch   = errors.New("currencies differ")
	ErrSameAccount        = errors.New("a transfer needs two different accounts")
	ErrAlreadyReversed    = errors.New("transaction is already reversed")
	ErrReversalOfReversal = errors.New("a reversal cannot itself be reversed")
	ErrVersionMismatch    = errors.New("version does not match: the row changed since it was read")
	ErrHasActiveAccounts  = errors.New("customer still holds an active account")
	ErrBalanceNotZero     = errors.New("account balance is not zero")
	ErrCustomerClosed     = errors.New("customer is closed")
	ErrEmailTaken         = errors.New("email is already used by another customer")
	ErrImmutable          = errors.New("a posted transaction's amount, accounts and type never change; reverse it instead")
	ErrInvalid            = errors.New("invalid")
)
