package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/money"
)

type transactionCreate struct {
	AccountID        string  `json:"account_id" format:"uuid" doc:"The account credited (DEPOSIT) or debited (WITHDRAWAL, TRANSFER)"`
	TransactionType  string  `json:"transaction_type" enum:"DEPOSIT,WITHDRAWAL,TRANSFER"`
	Amount           string  `json:"amount" maxLength:"40" pattern:"^[0-9]+(\\.[0-9]+)?$" patternDescription:"decimal string such as \"12.30\"" example:"12.30"`
	RelatedAccountID *string `json:"related_account_id,omitempty" format:"uuid" doc:"The destination of a TRANSFER; only transfers have one"`
	Currency         *string `json:"currency,omitempty" pattern:"^[A-Z]{3}$" doc:"When given, must be the account's currency"`
	Description      *string `json:"description,omitempty" maxLength:"500" pattern:"^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F]*$" patternDescription:"text without control characters"`
	Category         *string `json:"category,omitempty" maxLength:"50" pattern:"^[^\\x00-\\x1F\\x7F]*$" patternDescription:"text without control characters"`
}

// transactionReplace changes the descriptive fields. The money fields are accepted only
// unchanged, so a client may send back what it read; a change is refused: reverse instead.
type transactionReplace struct {
	Description      *string `json:"description,omitempty" nullable:"true" maxLength:"500" pattern:"^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F]*$" patternDescription:"text without control characters" doc:"Absent or null clears it"`
	Category         *string `json:"category,omitempty" nullable:"true" maxLength:"50" pattern:"^[^\\x00-\\x1F\\x7F]*$" patternDescription:"text without control characters" doc:"Absent or null clears it"`
	AccountID        *string `json:"account_id,omitempty" maxLength:"40" doc:"Read-only"`
	RelatedAccountID *string `json:"related_account_id,omitempty" nullable:"true" maxLength:"40" doc:"Read-only"`
	TransactionType  *string `json:"transaction_type,omitempty" maxLength:"20" doc:"Read-only"`
	Amount           *string `json:"amount,omitempty" maxLength:"40" doc:"Read-only"`
	Currency         *string `json:"currency,omitempty" maxLength:"3" doc:"Read-only"`
	Status           *string `json:"status,omitempty" maxLength:"20" doc:"Read-only: DELETE reverses a transaction"`
}

// TransactionPath names a transaction in the path.
type TransactionPath struct {
	TransactionID string `path:"transaction_id" format:"uuid"`
}

type transactionOne struct {
	ETag string `header:"ETag"`
	Body Transaction
}

type transactionCreated struct {
	Location string `header:"Location"`
	ETag     string `header:"ETag"`
	Replayed string `header:"Idempotent-Replayed"`
	Body     Transaction
}

func (o *transactionCreated) markReplayed() { o.Replayed = "true" }

// Reversal is the answer to DELETE /transactions/{id}: the original, now REVERSED, and the
// compensating entry that restored the balances.
type Reversal struct {
	Reversed Transaction `json:"reversed"`
	Reversal Transaction `json:"reversal"`
}

type reversalOut struct {
	Replayed string `header:"Idempotent-Replayed"`
	Body     Reversal
}

func (o *reversalOut) markReplayed() { o.Replayed = "true" }

func (s *server) registerTransactions() {
	s.registerListTransactions()
	s.registerGetTransaction()
	s.registerPostTransaction()
	s.registerDescribeTransaction()
	s.registerReverseTransaction()
}

// registerListTransactions registers GET /transactions.
func (s *server) registerListTransactions() {
	huma.Register(s.api, s.op(http.MethodGet, "/transactions", "list-transactions", "List transactions", ScopeRead,
		"the list holds the transactions touching its own customer's accounts alone (either side of a transfer)."),
		func(ctx context.Context, in *struct {
			PageParams
			AccountID       string    `query:"account_id" format:"uuid" doc:"Only transactions that touch this account (either side of a transfer)"`
			TransactionType string    `query:"transaction_type" enum:"DEPOSIT,WITHDRAWAL,TRANSFER"`
			From            time.Time `query:"from" doc:"Created at or after this time (RFC 3339)"`
			To              time.Time `query:"to" doc:"Created before this time (RFC 3339)"`
		}) (*struct{ Body List[Transaction] }, error) {
			page, err := in.page()
			if err != nil {
				return nil, err
			}
			f := bank.TransactionFilter{Owner: owner(ctx), Page: page}
			if f.AccountID, err = parseOptionalID(in.AccountID, "query.account_id"); err != nil {
				return nil, err
			}
			if in.TransactionType != "" {
				t := bank.TransactionType(in.TransactionType)
				f.Type = &t
			}
			if !in.From.IsZero() {
				f.From = &in.From
			}
			if !in.To.IsZero() {
				f.To = &in.To
			}
			rows, more, err := bank.ListTransactions(ctx, s.pool, f)
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return &struct{ Body List[Transaction] }{listOut(rows, more, transactionOut)}, nil
		})
}

// registerGetTransaction registers GET /transactions/{transaction_id}.
func (s *server) registerGetTransaction() {
	huma.Register(s.api, s.op(http.MethodGet, "/transactions/{transaction_id}", "get-transaction", "Get a transaction", ScopeRead,
		ownTransactionsOnly),
		func(ctx context.Context, in *TransactionPath) (*transactionOne, error) {
			id, err := parseID(in.TransactionID, "path.transaction_id")
			if err != nil {
				return nil, err
			}
			t, err := bank.GetTransaction(ctx, s.pool, id)
			if err == nil {
				err = seeTransaction(ctx, s.pool, t)
			}
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return &transactionOne{ETag: etag(t.Version), Body: transactionOut(t)}, nil
		})
}

// registerPostTransaction registers POST /transactions.
func (s *server) registerPostTransaction() {
	create := s.op(http.MethodPost, "/transactions", "post-transaction",
		"Post a DEPOSIT, WITHDRAWAL or TRANSFER (atomic; balances never go negative)", ScopeWrite,
		"account_id must be its own customer's (another answers 404, as an unknown one does); a TRANSFER may credit any account.")
	create.DefaultStatus = http.StatusCreated
	huma.Register(s.api, create, func(ctx context.Context, in *struct {
		IdempotencyHeader
		Body transactionCreate
	}) (*transactionCreated, error) {
		p, err := in.Body.posting()
		if err != nil {
			return nil, err
		}
		out, err := runWrite(ctx, s.pool, in.write(http.MethodPost, "/transactions", in.Body, http.StatusCreated),
			func(tx *pipedTx) (ending[transactionCreated], error) {
				var none ending[transactionCreated]
				if err := seeAccountID(ctx, tx, p.AccountID); err != nil {
					return none, err
				}
				w, err := bank.Prepare(ctx, tx, p)
				if err != nil {
					return none, err
				}
				if in.Body.Currency != nil && *in.Body.Currency != w.Currency {
					return none, newProblem(http.StatusUnprocessableEntity, "currency_mismatch",
						"account "+p.AccountID.String()+" holds "+w.Currency+", not "+*in.Body.Currency, "body.currency")
				}
				// Every check is done: the writes end the transaction, and inTx sends COMMIT with them.
				return then(w.Batch, func(br pgx.BatchResults) (*transactionCreated, error) {
					t, err := w.Read(br)
					if err != nil {
						return nil, err
					}
					return &transactionCreated{Location: "/transactions/" + t.ID.String(), ETag: etag(t.Version), Body: transactionOut(t)}, nil
				}), nil
			})
		if err != nil {
			return nil, problemFor(ctx, err)
		}
		return out, nil
	})
}

// registerDescribeTransaction registers PUT /transactions/{transaction_id}.
func (s *server) registerDescribeTransaction() {
	huma.Register(s.api, s.op(http.MethodPut, "/transactions/{transaction_id}", "describe-transaction",
		"Replace a transaction's description and category (amounts and accounts never change: reverse instead)", ScopeWrite,
		"only one posted on its own customer's account (a transfer it received answers 403 not_own_account; one it cannot see 404)."),
		func(ctx context.Context, in *struct {
			TransactionPath
			IfMatchHeader
			Body transactionReplace
		}) (*transactionOne, error) {
			id, version, err := versioned(in.TransactionID, "path.transaction_id", in.IfMatchHeader)
			if err != nil {
				return nil, err
			}
			t, err := inTx(ctx, s.pool, func(tx *pipedTx) (*bank.Transaction, error) {
				cur, err := bank.GetTransaction(ctx, tx, id)
				if err != nil {
					return nil, err
				}
				if err := changeTransaction(ctx, tx, cur, false); err != nil {
					return nil, err
				}
				if err := in.Body.unchanged(transactionOut(cur)); err != nil {
					return nil, err
				}
				t, err := bank.Describe(ctx, tx, id, bank.Description{Description: in.Body.Description, Category: in.Body.Category}, version)
				return &t, err
			})
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return &transactionOne{ETag: etag(t.Version), Body: transactionOut(*t)}, nil
		})
}

// registerReverseTransaction registers DELETE /transactions/{transaction_id}.
func (s *server) registerReverseTransaction() {
	huma.Register(s.api, s.op(http.MethodDelete, "/transactions/{transaction_id}", "reverse-transaction",
		"Reverse a transaction: a compensating entry restores the balances and the original is marked REVERSED", ScopeWrite,
		"only one whose accounts are all its own customer's (403 not_own_account otherwise, as reversing would move another customer's money; one it cannot see 404)."),
		func(ctx context.Context, in *struct {
			TransactionPath
			IdempotencyHeader
		}) (*reversalOut, error) {
			id, err := parseID(in.TransactionID, "path.transaction_id")
			if err != nil {
				return nil, err
			}
			out, err := runWrite(ctx, s.pool, in.write(http.MethodDelete, "/transactions/"+id.String(), nil, http.StatusOK),
				valued(func(tx *pipedTx) (*reversalOut, error) {
					if err := s.mayReverse(ctx, tx, id); err != nil {
						return nil, err
					}
					orig, rev, err := bank.Reverse(ctx, tx, id, uuid.Nil)
					if err != nil {
						return nil, err
					}
					return &reversalOut{Body: Reversal{Reversed: transactionOut(orig), Reversal: transactionOut(rev)}}, nil
				}))
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return out, nil
		})
}

// ownTransactionsOnly is what a customer token may read of transactions.
const ownTransactionsOnly = "only one touching its own customer's accounts (either side of a transfer); any other id answers 404, as an unknown one does."

// mayReverse refuses a customer token's reversal of a transaction beyond its accounts.
func (s *server) mayReverse(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	if owner(ctx) == nil {
		return nil
	}
	t, err := bank.GetTransaction(ctx, tx, id)
	if err != nil {
		return err
	}
	return changeTransaction(ctx, tx, t, true)
}

// posting checks the request beyond what the schema can (amount rules, ids) and builds the
// domain's posting.
func (b transactionCreate) posting() (bank.Posting, error) {
	account, err := parseID(b.AccountID, "body.account_id")
	if err != nil {
		return bank.Posting{}, err
	}
	related, err := parseOptionalID(deref(b.RelatedAccountID), "body.related_account_id")
	if err != nil {
		return bank.Posting{}, err
	}
	amount, err := money.ParseAmount(b.Amount)
	if err != nil {
		return bank.Posting{}, newProblem(http.StatusUnprocessableEntity, "invalid_amount", "amount "+err.Error(), "body.amount")
	}
	typ := bank.TransactionType(b.TransactionType)
	switch {
	case typ == bank.Transfer && related == nil:
		return bank.Posting{}, newProblem(http.StatusUnprocessableEntity, "invalid_field", "a TRANSFER needs related_account_id, its destination", "body.related_account_id")
	case typ != bank.Transfer && related != nil:
		return bank.Posting{}, newProblem(http.StatusUnprocessableEntity, "invalid_field", "only a TRANSFER has related_account_id", "body.related_account_id")
	}
	if b.Currency != nil {
		if err := money.CheckCurrency(*b.Currency); err != nil {
			return bank.Posting{}, newProblem(http.StatusUnprocessableEntity, "invalid_currency", err.Error(), "body.currency")
		}
	}
	return bank.Posting{AccountID: account, Type: typ, Amount: amount, RelatedAccountID: related,
		Description: b.Description, Category: b.Category}, nil
}

// unchanged refuses a replacement that would change what only a reversal may undo.
func (b transactionReplace) unchanged(cur Transaction) error {
	const why = " of a posted transaction never changes: DELETE it to reverse it, then post a new one"
	checks := []struct {
		field    string
		sent     *string
		current  *string
		isAmount bool
	}{
		{"account_id", b.AccountID, &cur.AccountID, false},
		{"related_account_id", b.RelatedAccountID, cur.RelatedAccountID, false},
		{"transaction_type", b.TransactionType, &cur.TransactionType, false},
		{"amount", b.Amount, &cur.Amount, true},
		{"currency", b.Currency, &cur.Currency, false},
		{"status", b.Status, &cur.Status, false},
	}
	for _, c := range checks {
		if c.sent == nil {
			continue
		}
		same := c.current != nil && *c.sent == *c.current
		if c.isAmount && c.current != nil {
			if d, err := money.ParseAmount(*c.sent); err == nil && money.Format(d) == *c.current {
				same = true
			}
		}
		if !same {
			return refuse(c.field, "the "+c.field+why)
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
