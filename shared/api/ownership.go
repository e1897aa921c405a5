package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
)

// A customer token (one naming a customer) sees only that customer, its accounts and the
// transactions touching them. Anything else answers exactly as an id that does not exist, so a
// customer learns nothing of other customers' ids. The checks below are nil for service tokens.

// owner is the customer the request's token acts for, or nil for a service token.
func owner(ctx context.Context) *uuid.UUID {
	if c := principalOf(ctx).Customer; c != uuid.Nil {
		return &c
	}
	return nil
}

// unknown is the answer for an id of kind ("customer", "account", "transaction") that does not
// exist, as the bank words it.
func unknown(kind string, id uuid.UUID) error {
	return fmt.Errorf("%s %s: %w", kind, id, bank.ErrNotFound)
}

// seeCustomer refuses a customer other than the token's own.
func seeCustomer(ctx context.Context, id uuid.UUID) error {
	if c := owner(ctx); c != nil && *c != id {
		return unknown("customer", id)
	}
	return nil
}

// seeAccount refuses an account of another customer, given the account as read.
func seeAccount(ctx context.Context, a bank.Account) error {
	if !principalOf(ctx).seesAccount(a) {
		return unknown("account", a.ID)
	}
	return nil
}

// seesAccount reports whether p may see a: any account for a service token, its own customer's
// for a customer token.
func (p principal) seesAccount(a bank.Account) bool {
	return p.Customer == uuid.Nil || p.Customer == a.CustomerID
}

// ownsAccounts reports whether every one of ids is an account of the token's customer (true for
// a service token).
func ownsAccounts(ctx context.Context, q bank.Querier, ids ...uuid.UUID) (bool, error) {
	c := owner(ctx)
	if c == nil {
		return true, nil
	}
	var n int
	err := q.QueryRow(ctx, `SELECT count(DISTINCT account_id) FROM accounts WHERE customer_id = $1 AND account_id = ANY($2)`,
		*c, ids).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check the owner of accounts %v: %w", ids, err)
	}
	distinct := map[uuid.UUID]bool{}
	for _, id := range ids {
		distinct[id] = true
	}
	return n == len(distinct), nil
}

// seeAccountID refuses an account of another customer, by id.
func seeAccountID(ctx context.Context, q bank.Querier, id uuid.UUID) error {
	ok, err := ownsAccounts(ctx, q, id)
	if err == nil && !ok {
		err = unknown("account", id)
	}
	return err
}

// sides are the accounts a transaction touches.
func sides(t bank.Transaction) []uuid.UUID {
	if t.RelatedAccountID != nil {
		return []uuid.UUID{t.AccountID, *t.RelatedAccountID}
	}
	return []uuid.UUID{t.AccountID}
}

// seeTransaction refuses a transaction that touches none of the token's customer's accounts.
func seeTransaction(ctx context.Context, q bank.Querier, t bank.Transaction) error {
	if owner(ctx) == nil {
		return nil
	}
	for _, id := range sides(t) {
		ok, err := ownsAccounts(ctx, q, id)
		if err != nil || ok {
			return err
		}
	}
	return unknown("transaction", t.ID)
}

// changeTransaction refuses a change to a transaction (describing or reversing it) that would
// reach beyond the token's customer's accounts. A customer sees a transfer from another
// customer, but its text is the sender's, and reversing it, or one of its own transfers out,
// would move money out of another customer's account. A visible transaction is answered 403,
// one it cannot see 404.
func changeTransaction(ctx context.Context, q bank.Querier, t bank.Transaction, reverse bool) error {
	if err := seeTransaction(ctx, q, t); err != nil {
		return err
	}
	ids := []uuid.UUID{t.AccountID}
	what := "describe only transactions posted on its own accounts"
	if reverse {
		ids, what = sides(t), "reverse only transactions between its own accounts"
	}
	ok, err := ownsAccounts(ctx, q, ids...)
	if err == nil && !ok {
		err = newProblem(http.StatusForbidden, "not_own_account", "a customer token may "+what, "")
	}
	return err
}

// hideHistory is a history read's answer for a customer token: for a key not its own, the
// warehouse's answer for a key it never saw. The read has been made either way, so a warehouse
// that is down answers 503 for both; only a found or not-found answer is replaced.
func hideHistory[T any](v T, err error, owned func() (bool, error), unseen func() error) (T, error) {
	var zero T
	if err != nil && !errors.Is(err, bank.ErrNotFound) {
		return zero, err
	}
	ok, oerr := owned()
	switch {
	case oerr != nil:
		return zero, oerr
	case !ok:
		return zero, unseen()
	}
	return v, err
}
