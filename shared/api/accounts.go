package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/money"
)

type accountCreate struct {
	CustomerID     string  `json:"customer_id" format:"uuid"`
	AccountType    string  `json:"account_type" enum:"CHECKING,SAVINGS"`
	Currency       string  `json:"currency" pattern:"^[A-Z]{3}$" patternDescription:"ISO 4217 code, such as USD" example:"USD"`
	Nickname       *string `json:"nickname,omitempty" nullable:"true" maxLength:"100" pattern:"^[^\\x00-\\x1F\\x7F]*$" patternDescription:"text without control characters"`
	OpeningDeposit *string `json:"opening_deposit,omitempty" pattern:"^[0-9]{1,16}(\\.[0-9]+)?$" patternDescription:"decimal string such as \"100.00\"" doc:"Posted as a DEPOSIT transaction in the same database transaction; the balance itself starts at zero"`
}

type accountReplace struct {
	AccountType string  `json:"account_type" enum:"CHECKING,SAVINGS"`
	Status      string  `json:"status" enum:"ACTIVE,INACTIVE" doc:"INACTIVE closes the account; refused while the balance is not zero"`
	Nickname    *string `json:"nickname,omitempty" maxLength:"100" pattern:"^[^\\x00-\\x1F\\x7F]*$" patternDescription:"text without control characters" doc:"Absent leaves the nickname as it is"`
	Balance     *string `json:"balance,omitempty" maxLength:"40" doc:"Read-only: accepted only when equal to the current balance. Money moves by posting transactions."`
}

// AccountPath names an account in the path.
type AccountPath struct {
	AccountID string `path:"account_id" format:"uuid"`
}

type accountOne struct {
	ETag string `header:"ETag"`
	CutHeaders
	Body Account
}

type accountCreated struct {
	Location string `header:"Location"`
	ETag     string `header:"ETag"`
	Replayed string `header:"Idempotent-Replayed"`
	Body     Account
}

func (o *accountCreated) markReplayed() { o.Replayed = "true" }

func oneAccount(a bank.Account) *accountOne {
	return &accountOne{ETag: etag(a.Version), Body: accountOut(a)}
}

func (s *server) registerAccounts() {
	s.registerListAccounts()
	s.registerGetAccount()
	s.registerOpenAccount()
	s.registerReplaceAccount()
	s.registerCloseAccount()
}

// registerListAccounts registers GET /accounts.
func (s *server) registerListAccounts() {
	huma.Register(s.api, s.op(http.MethodGet, "/accounts", "list-accounts", "List accounts", ScopeRead,
		"the list holds its own customer's accounts alone (a customer_id of another customer lists none)."),
		func(ctx context.Context, in *struct {
			PageParams
			CustomerID string `query:"customer_id" format:"uuid" doc:"Only this customer's accounts"`
			Status     string `query:"status" enum:"ACTIVE,INACTIVE" doc:"Only accounts in this status"`
		}) (*struct{ Body List[Account] }, error) {
			page, err := in.page()
			if err != nil {
				return nil, err
			}
			f := bank.AccountFilter{Owner: owner(ctx), Page: page}
			if f.CustomerID, err = parseOptionalID(in.CustomerID, "query.customer_id"); err != nil {
				return nil, err
			}
			if in.Status != "" {
				st := bank.AccountStatus(in.Status)
				f.Status = &st
			}
			rows, more, err := bank.ListAccounts(ctx, s.pool, f)
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return &struct{ Body List[Account] }{listOut(rows, more, accountOut)}, nil
		})
}

// registerGetAccount registers GET /accounts/{account_id}, now or as_of.
func (s *server) registerGetAccount() {
	op := s.historyOp("/accounts/{account_id}", "get-account", "Get an account (now, or as_of a past time)", ownAccountsOnly)
	if !s.humaGets {
		// Before Huma's route for the same path, which answers whatever it passes on.
		fast := &fastGetAccount{s: s, v: s.verifier, security: op.Security}
		s.app.Add(http.MethodGet, "/accounts/:account_id", fast.handle)
	}
	huma.Register(s.api, op,
		func(ctx context.Context, in *struct {
			AccountPath
			AsOfParam
		}) (*accountOne, error) {
			id, err := parseID(in.AccountID, "path.account_id")
			if err != nil {
				return nil, err
			}
			if t, ok, err := in.at(); err != nil || ok {
				if err != nil {
					return nil, err
				}
				return s.accountAsOf(ctx, id, t)
			}
			a, err := s.accounts.get(ctx, id)
			if err == nil {
				err = seeAccount(ctx, a)
			}
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return oneAccount(a), nil
		})
}

// registerOpenAccount registers POST /accounts, with an optional opening deposit.
func (s *server) registerOpenAccount() {
	create := s.op(http.MethodPost, "/accounts", "open-account", "Open an account (balance starts at zero)", ScopeWrite,
		"for its own customer only; another customer_id answers 404, as an unknown one does.")
	create.DefaultStatus = http.StatusCreated
	huma.Register(s.api, create, func(ctx context.Context, in *struct {
		IdempotencyHeader
		Body accountCreate
	}) (*accountCreated, error) {
		customer, err := parseID(in.Body.CustomerID, "body.customer_id")
		if err != nil {
			return nil, err
		}
		var deposit *decimal.Decimal
		if in.Body.OpeningDeposit != nil {
			amount, err := money.ParseAmount(*in.Body.OpeningDeposit)
			if err != nil {
				return nil, newProblem(http.StatusUnprocessableEntity, "invalid_amount", "opening_deposit "+err.Error(), "body.opening_deposit")
			}
			deposit = &amount
		}
		if err := money.CheckCurrency(in.Body.Currency); err != nil {
			return nil, newProblem(http.StatusUnprocessableEntity, "invalid_currency", err.Error(), "body.currency")
		}
		out, err := runWrite(ctx, s.pool, in.write(http.MethodPost, "/accounts", in.Body, http.StatusCreated),
			valued(func(tx *pipedTx) (*accountCreated, error) {
				if err := seeCustomer(ctx, customer); err != nil {
					return nil, err
				}
				n := bank.NewAccount{CustomerID: customer, Type: bank.AccountType(in.Body.AccountType),
					Currency: in.Body.Currency, Nickname: in.Body.Nickname}
				var a bank.Account
				var err error
				if deposit == nil {
					a, err = bank.OpenAccount(ctx, tx, n)
				} else {
					a, _, err = bank.OpenWithDeposit(ctx, tx, n, *deposit, nil)
				}
				if err != nil {
					return nil, err
				}
				return &accountCreated{Location: "/accounts/" + a.ID.String(), ETag: etag(a.Version), Body: accountOut(a)}, nil
			}))
		if err != nil {
			return nil, problemFor(ctx, err)
		}
		return out, nil
	})
}

// registerReplaceAccount registers PUT /accounts/{account_id}.
func (s *server) registerReplaceAccount() {
	huma.Register(s.api, s.op(http.MethodPut, "/accounts/{account_id}", "replace-account",
		"Replace an account's type, status and nickname (the balance moves only by posting)", ScopeWrite, ownAccountsOnly),
		func(ctx context.Context, in *struct {
			AccountPath
			IfMatchHeader
			Body accountReplace
		}) (*accountOne, error) {
			id, version, err := versioned(in.AccountID, "path.account_id", in.IfMatchHeader)
			if err != nil {
				return nil, err
			}
			typ, status := bank.AccountType(in.Body.AccountType), bank.AccountStatus(in.Body.Status)
			a, err := inTx(ctx, s.pool, func(tx *pipedTx) (*bank.Account, error) {
				if err := seeAccountID(ctx, tx, id); err != nil {
					return nil, err
				}
				if in.Body.Balance != nil {
					cur, err := bank.GetAccount(ctx, tx, id)
					if err != nil {
						return nil, err
					}
					if *in.Body.Balance != money.Format(cur.Balance) {
						return nil, refuse("balance", "the balance cannot be set: post a DEPOSIT, WITHDRAWAL or TRANSFER transaction instead")
					}
				}
				a, err := bank.UpdateAccount(ctx, tx, id, bank.AccountChange{Type: &typ, Status: &status, Nickname: in.Body.Nickname}, version)
				return &a, err
			})
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return oneAccount(*a), nil
		})
}

// registerCloseAccount registers DELETE /accounts/{account_id}.
func (s *server) registerCloseAccount() {
	huma.Register(s.api, s.op(http.MethodDelete, "/accounts/{account_id}", "close-account",
		"Close an account (soft delete to INACTIVE; refused while the balance is not zero)", ScopeWrite, ownAccountsOnly),
		func(ctx context.Context, in *struct {
			AccountPath
			IfMatchHeader
		}) (*accountOne, error) {
			id, version, err := versioned(in.AccountID, "path.account_id", in.IfMatchHeader)
			if err != nil {
				return nil, err
			}
			inactive := bank.Inactive
			a, err := inTx(ctx, s.pool, func(tx *pipedTx) (*bank.Account, error) {
				if err := seeAccountID(ctx, tx, id); err != nil {
					return nil, err
				}
				a, err := bank.UpdateAccount(ctx, tx, id, bank.AccountChange{Status: &inactive}, version)
				return &a, err
			})
			if err != nil {
				return nil, problemFor(ctx, err)
			}
			return oneAccount(*a), nil
		})
}
