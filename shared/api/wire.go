package api

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/money"
)

// The wire contract keeps the original API's names (customer_id, account_type, ...). Money is a
// decimal string with two places, times are UTC, ids are UUIDs.

// Customer is a customer as the API shows it.
type Customer struct {
	CustomerID  string    `json:"customer_id" format:"uuid"`
	FirstName   string    `json:"first_name"`
	LastName    string    `json:"last_name"`
	Email       string    `json:"email" format:"email"`
	AddressLine *string   `json:"address_line"`
	City        *string   `json:"city"`
	PostalCode  *string   `json:"postal_code"`
	Country     *string   `json:"country" doc:"ISO 3166-1 alpha-2"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Account is an account as the API shows it.
type Account struct {
	AccountID   string    `json:"account_id" format:"uuid"`
	CustomerID  string    `json:"customer_id" format:"uuid"`
	AccountType string    `json:"account_type" enum:"CHECKING,SAVINGS"`
	Currency    string    `json:"currency" example:"USD" doc:"ISO 4217"`
	Nickname    *string   `json:"nickname"`
	Balance     string    `json:"balance" example:"12.30" doc:"Decimal string with two places"`
	Status      string    `json:"status" enum:"ACTIVE,INACTIVE"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Transaction is a ledger entry as the API shows it.
type Transaction struct {
	TransactionID         string    `json:"transaction_id" format:"uuid"`
	AccountID             string    `json:"account_id" format:"uuid"`
	TransactionType       string    `json:"transaction_type" enum:"DEPOSIT,WITHDRAWAL,TRANSFER"`
	Amount                string    `json:"amount" example:"12.30" doc:"Decimal string with two places"`
	Currency              string    `json:"currency" example:"USD"`
	RelatedAccountID      *string   `json:"related_account_id" doc:"The destination of a transfer"`
	Status                string    `json:"status" enum:"COMPLETED,REVERSED"`
	Description           *string   `json:"description"`
	Category              *string   `json:"category"`
	ReversesTransactionID *string   `json:"reverses_transaction_id" doc:"Set on a reversal: the transaction it undoes"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

// List is one page of a list.
type List[T any] struct {
	Data    []T  `json:"data"`
	HasMore bool `json:"has_more" doc:"Whether another page follows; ask for it with starting_after set to the last id of this one"`
}

func customerOut(c bank.Customer) Customer {
	return Customer{
		CustomerID: c.ID.String(), FirstName: c.FirstName, LastName: c.LastName, Email: c.Email,
		AddressLine: c.AddressLine, City: c.City, PostalCode: c.PostalCode, Country: c.Country,
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
}

func accountOut(a bank.Account) Account {
	return Account{
		AccountID: a.ID.String(), CustomerID: a.CustomerID.String(), AccountType: string(a.Type),
		Currency: a.Currency, Nickname: a.Nickname, Balance: money.Format(a.Balance), Status: string(a.Status),
		CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(),
	}
}

func transactionOut(t bank.Transaction) Transaction {
	return Transaction{
		TransactionID: t.ID.String(), AccountID: t.AccountID.String(), TransactionType: string(t.Type),
		Amount: money.Format(t.Amount), Currency: t.Currency, RelatedAccountID: idString(t.RelatedAccountID),
		Status: string(t.Status), Description: t.Description, Category: t.Category,
		ReversesTransactionID: idString(t.ReversesID), CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(),
	}
}

func listOut[B, W any](rows []B, hasMore bool, out func(B) W) List[W] {
	l := List[W]{Data: make([]W, len(rows)), HasMore: hasMore}
	for i, r := range rows {
		l.Data[i] = out(r)
	}
	return l
}

func idString(id *uuid.UUID) *string {
	if id == nil {
		return nil
	}
	s := id.String()
	return &s
}

// etag names a row version: a strong validator, since any change bumps the version.
func etag(version int64) string { return `"v` + strconv.FormatInt(version, 10) + `"` }

// versioned reads the target of a write: the id in the path (location names it in a problem)
// and the version its If-Match header demands (nil: any).
func versioned(id, location string, h IfMatchHeader) (uuid.UUID, *int64, error) {
	uid, err := parseID(id, location)
	if err != nil {
		return uuid.Nil, nil, err
	}
	version, err := ifMatch(h.IfMatch)
	return uid, version, err
}

// ifMatch reads an If-Match header into the version it demands: nil when absent or "*".
func ifMatch(h string) (*int64, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return nil, nil
	}
	s := strings.TrimPrefix(h, "W/")
	s = strings.TrimSuffix(strings.TrimPrefix(s, `"v`), `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || !strings.HasPrefix(strings.TrimPrefix(h, "W/"), `"v`) {
		return nil, newProblem(412, "precondition_failed", "If-Match must be an ETag this API returned, such as \"v3\"", "header.If-Match")
	}
	return &v, nil
}

// parseID reads an id the schema already checked as a UUID.
func parseID(s, location string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, newProblem(422, "invalid_field", "must be a UUID", location)
	}
	return id, nil
}

func parseOptionalID(s, location string) (*uuid.UUID, error) {
	if s == "" {
		return nil, nil
	}
	id, err := parseID(s, location)
	return &id, err
}
