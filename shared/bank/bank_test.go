package bank_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

type world struct {
	t    *testing.T
	db   *pgtest.DB
	pool *pgxpool.Pool
	ctx  context.Context
}

func newWorld(t *testing.T) *world {
	db := pgtest.New(t)
	return &world{t: t, db: db, pool: db.Pool, ctx: context.Background()}
}

func (w *world) customer(email string) bank.Customer {
	w.t.Helper()
	c, err := bank.CreateCustomer(w.ctx, w.pool, uuid.Nil, bank.CustomerFields{FirstName: "Grace", LastName: "Hopper", Email: email})
	if err != nil {
		w.t.Fatalf("create customer: %v", err)
	}
	return c
}

func (w *world) account(c bank.Customer, currency string, deposit string) bank.Account {
	w.t.Helper()
	var a bank.Account
	w.tx(func(tx pgx.Tx) error {
		var err error
		n := bank.NewAccount{CustomerID: c.ID, Type: bank.Checking, Currency: currency}
		if deposit == "" {
			a, err = bank.OpenAccount(w.ctx, tx, n)
		} else {
			a, _, err = bank.OpenWithDeposit(w.ctx, tx, n, dec(deposit), nil)
		}
		return err
	})
	return a
}

func (w *world) tx(fn func(pgx.Tx) error) {
	w.t.Helper()
	if err := pgx.BeginFunc(w.ctx, w.pool, fn); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) post(p bank.Posting) (bank.Transaction, error) {
	var t bank.Transaction
	err := pgx.BeginFunc(w.ctx, w.pool, func(tx pgx.Tx) error {
		var err error
		t, err = bank.Post(w.ctx, tx, p)
		return err
	})
	return t, err
}

func (w *world) balance(id uuid.UUID) string {
	w.t.Helper()
	a, err := bank.GetAccount(w.ctx, w.pool, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return a.Balance.StringFixed(2)
}

func TestPostRules(t *testing.T) {
	w := newWorld(t)
	c := w.customer("grace@example.com")
	a := w.account(c, "USD", "100.00")
	b := w.account(c, "USD", "")
	e := w.account(c, "EUR", "5.00")
	closed := w.account(c, "USD", "")
	inactive := bank.Inactive
	w.tx(func(tx pgx.Tx) error {
		_, err := bank.UpdateAccount(w.ctx, tx, closed.ID, bank.AccountChange{Status: &inactive}, nil)
		return err
	})
	ghost := uuid.New()
	tests := []struct {
		name    string
		p       bank.Posting
		wantErr error
	}{
		{"withdraw more than held", bank.Posting{AccountID: a.ID, Type: bank.Withdrawal, Amount: dec("100.01")}, bank.ErrInsufficientFunds},
		{"transfer more than held", bank.Posting{AccountID: a.ID, Type: bank.Transfer, Amount: dec("100.01"), RelatedAccountID: &b.ID}, bank.ErrInsufficientFunds},
		{"transfer across currencies", bank.Posting{AccountID: a.ID, Type: bank.Transfer, Amount: dec("1"), RelatedAccountID: &e.ID}, bank.ErrCurrencyMismatch},
		{"transfer to itself", bank.Posting{AccountID: a.ID, Type: bank.Transfer, Amount: dec("1"), RelatedAccountID: &a.ID}, bank.ErrSameAccount},
		{"transfer without destination", bank.Posting{AccountID: a.ID, Type: bank.Transfer, Amount: dec("1")}, bank.ErrInvalid},
		{"deposit with destination", bank.Posting{AccountID: a.ID, Type: bank.Deposit, Amount: dec("1"), RelatedAccountID: &b.ID}, bank.ErrInvalid},
		{"three decimals", bank.Posting{AccountID: a.ID, Type: bank.Deposit, Amount: dec("1.005")}, bank.ErrInvalid},
		{"zero", bank.Posting{AccountID: a.ID, Type: bank.Deposit, Amount: dec("0")}, bank.ErrInvalid},
		{"negative", bank.Posting{AccountID: a.ID, Type: bank.Deposit, Amount: dec("-3")}, bank.ErrInvalid},
		{"unknown type", bank.Posting{AccountID: a.ID, Type: "FEE", Amount: dec("1")}, bank.ErrInvalid},
		{"into inactive account", bank.Posting{AccountID: closed.ID, Type: bank.Deposit, Amount: dec("1")}, bank.ErrAccountInactive},
		{"transfer to inactive account", bank.Posting{AccountID: a.ID, Type: bank.Transfer, Amount: dec("1"), RelatedAccountID: &closed.ID}, bank.ErrAccountInactive},
		{"unknown account", bank.Posting{AccountID: ghost, Type: bank.Deposit, Amount: dec("1")}, bank.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := w.post(tt.p); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Post = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if got := w.balance(a.ID); got != "100.00" {
		t.Fatalf("refused postings moved money: balance %s, want 100.00", got)
	}

	tr, err := w.post(bank.Posting{AccountID: a.ID, Type: bank.Transfer, Amount: dec("30.10"), RelatedAccountID: &b.ID})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Currency != "USD" || tr.Status != bank.Completed || tr.Amount.StringFixed(2) != "30.10" {
		t.Fatalf("transfer row %+v", tr)
	}
	if _, err := w.post(bank.Posting{AccountID: a.ID, Type: bank.Withdrawal, Amount: dec("69.90")}); err != nil {
		t.Fatalf("withdraw to exactly zero: %v", err)
	}
	if got, got2 := w.balance(a.ID), w.balance(b.ID); got != "0.00" || got2 != "30.10" {
		t.Fatalf("balances after transfer and withdrawal: %s and %s, want 0.00 and 30.10", got, got2)
	}
}

// Decide is the rules alone, on accounts as they stand: the same refusals as Post and the
// balances a posting leaves.
func TestDecide(t *testing.T) {
	acct := func(cur, bal string, st bank.AccountStatus) bank.Account {
		return bank.Account{ID: uuid.New(), Currency: cur, Balance: dec(bal), Status: st}
	}
	usd, usd2, eur := acct("USD", "100.00", bank.Active), acct("USD", "5.00", bank.Active), acct("EUR", "5.00", bank.Active)
	closed, empty := acct("USD", "0.00", bank.Inactive), acct("USD", "0.00", bank.Active)
	post := func(from bank.Account, typ bank.TransactionType, amount string, to *bank.Account) bank.Posting {
		p := bank.Posting{AccountID: from.ID, Type: typ, Amount: dec(amount)}
		if to != nil {
			p.RelatedAccountID = &to.ID
		}
		return p
	}
	for _, tc := range []struct {
		name     string
		p        bank.Posting
		from, to bank.Account
		wantErr  error
		want     [2]string // balances left on from and to
	}{
		{"deposit", post(usd, bank.Deposit, "0.01", nil), usd, bank.Account{}, nil, [2]string{"100.01", "0.00"}},
		{"deposit into an empty account", post(empty, bank.Deposit, "7.50", nil), empty, bank.Account{}, nil, [2]string{"7.50", "0.00"}},
		{"withdraw all", post(usd, bank.Withdrawal, "100.00", nil), usd, bank.Account{}, nil, [2]string{"0.00", "0.00"}},
		{"withdraw more than held", post(usd, bank.Withdrawal, "100.01", nil), usd, bank.Account{}, bank.ErrInsufficientFunds, [2]string{}},
		{"withdraw from empty", post(empty, bank.Withdrawal, "0.01", nil), empty, bank.Account{}, bank.ErrInsufficientFunds, [2]string{}},
		{"transfer", post(usd, bank.Transfer, "30.10", &usd2), usd, usd2, nil, [2]string{"69.90", "35.10"}},
		{"transfer more than held", post(usd2, bank.Transfer, "5.01", &usd), usd2, usd, bank.ErrInsufficientFunds, [2]string{}},
		{"transfer across currencies", post(usd, bank.Transfer, "1", &eur), usd, eur, bank.ErrCurrencyMismatch, [2]string{}},
		{"transfer to itself", post(usd, bank.Transfer, "1", &usd), usd, usd, bank.ErrSameAccount, [2]string{}},
		{"transfer to an inactive account", post(usd, bank.Transfer, "1", &closed), usd, closed, bank.ErrAccountInactive, [2]string{}},
		{"deposit into an inactive account", post(closed, bank.Deposit, "1", nil), closed, bank.Account{}, bank.ErrAccountInactive, [2]string{}},
		{"three decimals", post(usd, bank.Deposit, "1.005", nil), usd, bank.Account{}, bank.ErrInvalid, [2]string{}},
		{"zero", post(usd, bank.Deposit, "0", nil), usd, bank.Account{}, bank.ErrInvalid, [2]string{}},
		{"unknown type", post(usd, "FEE", "1", nil), usd, bank.Account{}, bank.ErrInvalid, [2]string{}},
		{"decided against another account", post(usd, bank.Deposit, "1", nil), usd2, bank.Account{}, bank.ErrInvalid, [2]string{}},
		{"decided against another destination", post(usd, bank.Transfer, "1", &usd2), usd, empty, bank.ErrInvalid, [2]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bank.Decide(tc.p, tc.from, tc.to)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Decide = %v, want %v", err, tc.wantErr)
			}
			if err == nil && (got.From.StringFixed(2) != tc.want[0] || got.To.StringFixed(2) != tc.want[1]) {
				t.Fatalf("Decide leaves %s and %s, want %s and %s", got.From.StringFixed(2), got.To.StringFixed(2), tc.want[0], tc.want[1])
			}
		})
	}
}

func TestOpenWithDeposit(t *testing.T) {
	w := newWorld(t)
	c := w.customer("ada@example.com")
	n := bank.NewAccount{CustomerID: c.ID, Type: bank.Savings, Currency: "EUR"}
	var a bank.Account
	var dep bank.Transaction
	w.tx(func(tx pgx.Tx) error {
		var err error
		a, dep, err = bank.OpenWithDeposit(w.ctx, tx, n, dec("250.00"), nil)
		return err
	})
	if a.Balance.StringFixed(2) != "250.00" || w.balance(a.ID) != "250.00" {
		t.Fatalf("opened with balance %s (stored %s), want 250.00", a.Balance.StringFixed(2), w.balance(a.ID))
	}
	if dep.AccountID != a.ID || dep.Type != bank.Deposit || dep.Description == nil || *dep.Description != bank.OpeningDeposit {
		t.Fatalf("opening deposit %+v, want a DEPOSIT on %s described %q", dep, a.ID, bank.OpeningDeposit)
	}
	if stored, err := bank.GetAccount(w.ctx, w.pool, a.ID); err != nil || stored.Version != a.Version {
		t.Fatalf("returned version %d, stored %d (%v): the account must be returned as it stands after the deposit", a.Version, stored.Version, err)
	}
	// A deposit the rules refuse refuses the whole opening (the caller's transaction rolls back).
	err := pgx.BeginFunc(w.ctx, w.pool, func(tx pgx.Tx) error {
		_, _, err := bank.OpenWithDeposit(w.ctx, tx, n, dec("0.001"), nil)
		return err
	})
	if !errors.Is(err, bank.ErrInvalid) {
		t.Fatalf("opening with a deposit of 0.001 = %v, want ErrInvalid", err)
	}
	var accounts int
	w.pool.QueryRow(w.ctx, "SELECT count(*) FROM accounts WHERE customer_id = $1", c.ID).Scan(&accounts)
	if accounts != 1 {
		t.Fatalf("%d accounts after a refused opening, want 1", accounts)
	}
}

func TestReverse(t *testing.T) {
	w := newWorld(t)
	c := w.customer("rev@example.com")
	a := w.account(c, "GBP", "50.00")
	b := w.account(c, "GBP", "")
	tr, err := w.post(bank.Posting{AccountID: a.ID, Type: bank.Transfer, Amount: dec("20.00"), RelatedAccountID: &b.ID})
	if err != nil {
		t.Fatal(err)
	}
	var orig, rev bank.Transaction
	w.tx(func(tx pgx.Tx) error {
		var err error
		orig, rev, err = bank.Reverse(w.ctx, tx, tr.ID, uuid.Nil)
		return err
	})
	if orig.Status != bank.Reversed || rev.ReversesID == nil || *rev.ReversesID != tr.ID {
		t.Fatalf("reverse: original %+v, reversal %+v", orig, rev)
	}
	if rev.AccountID != b.ID || *rev.RelatedAccountID != a.ID || rev.Type != bank.Transfer {
		t.Fatalf("reversal of a transfer must move the money back: %+v", rev)
	}
	if w.balance(a.ID) != "50.00" || w.balance(b.ID) != "0.00" {
		t.Fatalf("balances after reversal: %s, %s", w.balance(a.ID), w.balance(b.ID))
	}
	for _, id := range []uuid.UUID{tr.ID, rev.ID} {
		err := pgx.BeginFunc(w.ctx, w.pool, func(tx pgx.Tx) error {
			_, _, err := bank.Reverse(w.ctx, tx, id, uuid.Nil)
			return err
		})
		if !errors.Is(err, bank.ErrAlreadyReversed) && !errors.Is(err, bank.ErrReversalOfReversal) {
			t.Fatalf("second reversal of %s = %v, want refused", id, err)
		}
	}
	// A deposit that has been spent cannot be reversed: that would overdraw.
	d, _ := w.post(bank.Posting{AccountID: b.ID, Type: bank.Deposit, Amount: dec("10.00")})
	w.post(bank.Posting{AccountID: b.ID, Type: bank.Withdrawal, Amount: dec("5.00")})
	err = pgx.BeginFunc(w.ctx, w.pool, func(tx pgx.Tx) error {
		_, _, err := bank.Reverse(w.ctx, tx, d.ID, uuid.Nil)
		return err
	})
	if !errors.Is(err, bank.ErrInsufficientFunds) {
		t.Fatalf("reversing a spent deposit = %v, want ErrInsufficientFunds", err)
	}
}

func TestLifecycle(t *testing.T) {
	w := newWorld(t)
	prospect := w.customer("prospect@example.com")
	holder := w.customer("holder@example.com")
	a := w.account(holder, "USD", "10.00")
	remove := func(id uuid.UUID) (bool, error) {
		var deleted bool
		err := pgx.BeginFunc(w.ctx, w.pool, func(tx pgx.Tx) error {
			var err error
			deleted, err = bank.RemoveCustomer(w.ctx, tx, id)
			return err
		})
		return deleted, err
	}
	if _, err := remove(holder.ID); !errors.Is(err, bank.ErrHasActiveAccounts) {
		t.Fatalf("remove customer with an active account = %v", err)
	}
	inactive := bank.Inactive
	err := pgx.BeginFunc(w.ctx, w.pool, func(tx pgx.Tx) error {
		_, err := bank.UpdateAccount(w.ctx, tx, a.ID, bank.AccountChange{Status: &inactive}, nil)
		return err
	})
	if !errors.Is(err, bank.ErrBalanceNotZero) {
		t.Fatalf("close account holding money = %v", err)
	}
	w.post(bank.Posting{AccountID: a.ID, Type: bank.Withdrawal, Amount: dec("10.00")})
	w.tx(func(tx pgx.Tx) error {
		_, err := bank.UpdateAccount(w.ctx, tx, a.ID, bank.AccountChange{Status: &inactive}, nil)
		return err
	})
	if deleted, err := remove(holder.ID); err != nil || deleted {
		t.Fatalf("remove customer with closed accounts = %v, deleted %v; want closed, kept", err, deleted)
	}
	if _, err := bank.GetCustomer(w.ctx, w.pool, holder.ID); !errors.Is(err, bank.ErrNotFound) {
		t.Fatalf("closed customer still current: %v", err)
	}
	if deleted, err := remove(prospect.ID); err != nil || !deleted {
		t.Fatalf("remove prospect = %v, deleted %v; want deleted", err, deleted)
	}
	// The email of a closed customer is free again.
	w.customer("holder@example.com")
	if _, err := bank.CreateCustomer(w.ctx, w.pool, uuid.Nil, bank.CustomerFields{FirstName: "X", LastName: "Y", Email: "HOLDER@example.com"}); !errors.Is(err, bank.ErrEmailTaken) {
		t.Fatalf("duplicate email = %v, want ErrEmailTaken", err)
	}
	var fe *bank.FieldError
	if _, err := bank.CreateCustomer(w.ctx, w.pool, uuid.Nil, bank.CustomerFields{FirstName: "X", LastName: "Y", Email: "nope"}); !errors.As(err, &fe) || fe.Field != "email" {
		t.Fatalf("bad email = %v, want a FieldError on email", err)
	}
	c := w.customer("v@example.com")
	stale := c.Version
	f := bank.CustomerFields{FirstName: "Val", LastName: "Two", Email: "v@example.com"}
	if _, err := bank.UpdateCustomer(w.ctx, w.pool, c.ID, f, &stale); err != nil {
		t.Fatal(err)
	}
	if _, err := bank.UpdateCustomer(w.ctx, w.pool, c.ID, f, &stale); !errors.Is(err, bank.ErrVersionMismatch) {
		t.Fatalf("update at a stale version = %v, want ErrVersionMismatch", err)
	}
}

// Concurrent random transfers among a few accounts keep the total exact, never overdraw and never
// deadlock (locks are taken in id order).
func TestConcurrentTransfers(t *testing.T) {
	w := newWorld(t)
	c := w.customer("many@example.com")
	var ids []uuid.UUID
	for range 10 {
		ids = append(ids, w.account(c, "USD", "100.00").ID)
	}
	// 16 connections, so transfers really contend for the same rows.
	pool, err := database.Open(w.ctx, w.db.URL, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	w.pool = pool
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 1))
			from, to := ids[r.IntN(10)], ids[r.IntN(10)]
			if from == to {
				return
			}
			amt := decimal.New(int64(1+r.IntN(6000)), -2)
			_, err := w.post(bank.Posting{AccountID: from, Type: bank.Transfer, Amount: amt, RelatedAccountID: &to})
			if err != nil && !errors.Is(err, bank.ErrInsufficientFunds) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("transfer failed (a deadlock or lost lock?): %v", err)
	}
	var total decimal.Decimal
	var negative int
	if err := w.pool.QueryRow(w.ctx, "SELECT sum(balance), count(*) FILTER (WHERE balance < 0) FROM accounts").Scan(&total, &negative); err != nil {
		t.Fatal(err)
	}
	if total.StringFixed(2) != "1000.00" || negative != 0 {
		t.Fatalf("after 200 concurrent transfers: total %s (want 1000.00), %d negative balances", total.StringFixed(2), negative)
	}
}
