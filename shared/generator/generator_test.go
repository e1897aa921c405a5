package generator_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/generator"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

func smallConfig(t *testing.T, seed int64) generator.Config {
	t.Helper()
	cfg, err := generator.Parse([]byte("customers: 120\naccounts: 200\ntransactions: 3000\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seed = seed
	return cfg
}

// checkInvariants asserts the money rules over the whole database: every balance equals the sum
// of its postings, none is negative, and transfers move money without creating or destroying it.
func checkInvariants(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	var mismatched, negative int
	err := pool.QueryRow(ctx, `
		WITH effects AS (
			SELECT account_id, CASE WHEN transaction_type = 'DEPOSIT' THEN amount ELSE -amount END AS delta
			  FROM transactions
			UNION ALL
			SELECT related_account_id, amount FROM transactions WHERE transaction_type = 'TRANSFER'
		), sums AS (SELECT account_id, sum(delta) AS total FROM effects GROUP BY account_id)
		SELECT count(*) FILTER (WHERE a.balance <> coalesce(s.total, 0)),
		       count(*) FILTER (WHERE a.balance < 0)
		  FROM accounts a LEFT JOIN sums s USING (account_id)`).Scan(&mismatched, &negative)
	if err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 || negative != 0 {
		t.Fatalf("%d accounts whose balance is not the sum of their postings, %d negative", mismatched, negative)
	}
	var total, deposits, withdrawals string
	err = pool.QueryRow(ctx, `SELECT coalesce(sum(balance), 0)::text,
		(SELECT coalesce(sum(amount), 0) FROM transactions WHERE transaction_type = 'DEPOSIT')::text,
		(SELECT coalesce(sum(amount), 0) FROM transactions WHERE transaction_type = 'WITHDRAWAL')::text
		FROM accounts`).Scan(&total, &deposits, &withdrawals)
	if err != nil {
		t.Fatal(err)
	}
	var ok bool
	pool.QueryRow(ctx, "SELECT $1::numeric = $2::numeric - $3::numeric", total, deposits, withdrawals).Scan(&ok)
	if !ok {
		t.Fatalf("sum of balances %s != deposits %s - withdrawals %s: transfers created or destroyed money", total, deposits, withdrawals)
	}
}

func TestBulkInsertsExactCountsAndKeepsInvariants(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	cfg := smallConfig(t, 11)
	res, err := generator.Bulk(ctx, db.Pool, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var c, a, tx, transfers int
	db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM accounts),
		(SELECT count(*) FROM transactions), (SELECT count(*) FROM transactions WHERE transaction_type = 'TRANSFER')`).Scan(&c, &a, &tx, &transfers)
	if c != 120 || a != 200 || tx != 3000 || res.Transactions != 3000 {
		t.Fatalf("inserted %d customers, %d accounts, %d transactions; want exactly 120, 200, 3000", c, a, tx)
	}
	if transfers == 0 {
		t.Fatal("no transfers generated")
	}
	checkInvariants(t, db.Pool)
	checkIDsAreV7(t, db.Pool, 0)

	if _, err := generator.Bulk(ctx, db.Pool, cfg, nil); !errors.Is(err, generator.ErrAlreadyLoaded) {
		t.Fatalf("loading the same seed twice = %v, want ErrAlreadyLoaded", err)
	}
}

// fingerprint is a hash of every generated row, timestamps and ids included.
func fingerprint(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var h string
	err := pool.QueryRow(context.Background(), `SELECT md5(
		(SELECT string_agg(c::text, '|' ORDER BY customer_id) FROM (SELECT customer_id, first_name, last_name, email, address_line, city, postal_code, country, created_at FROM customers) c) ||
		(SELECT string_agg(a::text, '|' ORDER BY account_id) FROM (SELECT account_id, customer_id, account_type, currency, balance, status, created_at FROM accounts) a) ||
		(SELECT string_agg(x::text, '|' ORDER BY transaction_id) FROM (SELECT transaction_id, account_id, transaction_type, amount, currency, related_account_id, description, category, created_at FROM transactions) x))`).Scan(&h)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBulkIsDeterministic(t *testing.T) {
	ctx := context.Background()
	run := func(seed int64) string {
		db := pgtest.New(t)
		if _, err := generator.Bulk(ctx, db.Pool, smallConfig(t, seed), nil); err != nil {
			t.Fatal(err)
		}
		return fingerprint(t, db.Pool)
	}
	first, second, other := run(5), run(5), run(6)
	if first != second {
		t.Fatalf("the same seed produced different data: %s vs %s", first, second)
	}
	if first == other {
		t.Fatal("different seeds produced the same data")
	}
}

// streamOnBulk bulk-loads a small data set of seed into a new database and returns a stream over
// it whose rare actions are weighed up, so a short run sees them all; tune changes the
// configuration of both first.
func streamOnBulk(t *testing.T, seed int64, tune func(*generator.Config)) (*pgtest.DB, *generator.Stream) {
	t.Helper()
	db := pgtest.New(t)
	ctx := context.Background()
	cfg := smallConfig(t, seed)
	cfg.Continuous.Actions = map[string]float64{"transaction": 30, "new_customer": 10, "open_account": 5,
		"update_customer": 10, "close_account": 10, "reopen_account": 5, "remove_customer": 10, "reverse": 10}
	cfg.Continuous.ProspectShare = 0.5
	tune(&cfg)
	if _, err := generator.Bulk(ctx, db.Pool, cfg, nil); err != nil {
		t.Fatal(err)
	}
	s, err := generator.NewStream(ctx, db.Pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return db, s
}

func TestStreamMakesEveryKindOfChange(t *testing.T) {
	ctx := context.Background()
	db, s := streamOnBulk(t, 3, func(*generator.Config) {})
	for range 600 {
		if err := s.Step(ctx); err != nil {
			t.Fatalf("step: %v", err)
		}
	}
	st := &s.Stats
	counts := map[string]int64{
		"transactions": st.Transactions.Load(), "customers created": st.CustomersCreated.Load(),
		"customers updated": st.CustomersUpdated.Load(), "customers deleted": st.CustomersDeleted.Load(),
		"accounts opened": st.AccountsOpened.Load(), "accounts closed": st.AccountsClosed.Load(),
		"reversals": st.Reversals.Load(),
	}
	for what, n := range counts {
		if n == 0 {
			t.Errorf("600 steps made no %s", what)
		}
	}
	if st.Failed.Load() != 0 {
		t.Errorf("%d operations failed", st.Failed.Load())
	}
	checkInvariants(t, db.Pool)
	// The bulk's rows and the stream's: the stream's ids are the database's, of the insert's
	// clock, a little after created_at (its transaction's start).
	checkIDsAreV7(t, db.Pool, 5*time.Second)
}

// checkIDsAreV7 asserts that every id is a UUIDv7 (RFC 9562) of its row's created_at, within
// slack: time-ordered keys (docs/design.md, "Ids are UUIDs").
func checkIDsAreV7(t *testing.T, pool *pgxpool.Pool, slack time.Duration) {
	t.Helper()
	n := 0
	rows, _ := pool.Query(context.Background(), `SELECT customer_id, created_at FROM customers
		UNION ALL SELECT account_id, created_at FROM accounts UNION ALL SELECT transaction_id, created_at FROM transactions`)
	var id uuid.UUID
	var created time.Time
	_, err := pgx.ForEachRow(rows, []any{&id, &created}, func() error {
		n++
		sec, nsec := id.Time().UnixTime()
		at := time.Unix(sec, nsec)
		if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
			return fmt.Errorf("id %s is version %d, variant %v; want 7, RFC 9562", id, id.Version(), id.Variant())
		}
		if d := at.Sub(created.Truncate(time.Millisecond)); d < 0 && -d > slack || d > slack {
			return fmt.Errorf("id %s carries %s, its row was created at %s", id, at, created)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("ids of %d rows: %v", n, err)
	}
}

// The bulk load writes its ledger with COPY; this replays that ledger, in its order, through
// bank.Post on fresh accounts of the same currencies: every row must be one Post books, and the
// balances Post leaves must be the ones the bulk load wrote.
func TestBulkLedgerIsWhatPostAllows(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	if _, err := generator.Bulk(ctx, db.Pool, smallConfig(t, 21), nil); err != nil {
		t.Fatal(err)
	}
	type acct struct {
		currency string
		balance  decimal.Decimal
	}
	bulk := map[uuid.UUID]acct{}
	rows, err := db.Pool.Query(ctx, "SELECT account_id, currency, balance FROM accounts ORDER BY account_id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		var a acct
		if err := rows.Scan(&id, &a.currency, &a.balance); err != nil {
			t.Fatal(err)
		}
		bulk[id] = a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	type posting struct {
		account uuid.UUID
		kind    bank.TransactionType
		amount  decimal.Decimal
		related *uuid.UUID
	}
	var ledger []posting
	rows, err = db.Pool.Query(ctx, `SELECT account_id, transaction_type, amount, related_account_id
		FROM transactions ORDER BY created_at, transaction_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p posting
		if err := rows.Scan(&p.account, &p.kind, &p.amount, &p.related); err != nil {
			t.Fatal(err)
		}
		ledger = append(ledger, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		c, err := bank.CreateCustomer(ctx, tx, uuid.Nil, bank.CustomerFields{FirstName: "Re", LastName: "Play", Email: "replay@example.com"})
		if err != nil {
			return err
		}
		twin := map[uuid.UUID]uuid.UUID{}
		for id, a := range bulk {
			opened, err := bank.OpenAccount(ctx, tx, bank.NewAccount{CustomerID: c.ID, Type: bank.Checking, Currency: a.currency})
			if err != nil {
				return err
			}
			twin[id] = opened.ID
		}
		kinds := map[bank.TransactionType]int{}
		for i, p := range ledger {
			q := bank.Posting{AccountID: twin[p.account], Type: p.kind, Amount: p.amount}
			if p.related != nil {
				to := twin[*p.related]
				q.RelatedAccountID = &to
			}
			if _, err := bank.Post(ctx, tx, q); err != nil {
				return fmt.Errorf("ledger row %d of %d (%s %s) is one bank.Post refuses: %w", i, len(ledger), p.kind, p.amount, err)
			}
			kinds[p.kind]++
		}
		if kinds[bank.Deposit] == 0 || kinds[bank.Withdrawal] == 0 || kinds[bank.Transfer] == 0 {
			return fmt.Errorf("the replayed ledger holds %v: every kind is needed for the comparison to mean something", kinds)
		}
		for id, a := range bulk {
			got, err := bank.GetAccount(ctx, tx, twin[id])
			if err != nil {
				return err
			}
			if !got.Balance.Equal(a.balance) {
				return fmt.Errorf("account %s: bulk wrote balance %s, bank.Post leaves %s", id, a.balance, got.Balance)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStreamWritersKeepInvariants runs the stream with eight writers at once, at a rate above
// what they can reach, for 600 operations: what they remember is shared, so no operation may
// fail (a refusal by the bank is a decline), and the money rules hold over the database.
func TestStreamWritersKeepInvariants(t *testing.T) {
	ctx := context.Background()
	db, s := streamOnBulk(t, 5, func(cfg *generator.Config) { cfg.Continuous.Rate, cfg.Continuous.Writers = 5000, 8 })
	runCtx, stop := context.WithTimeout(ctx, 2*time.Minute)
	defer stop()
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- s.Run(runCtx) }()
	for s.Stats.Ops.Load() < 600 && runCtx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wall := time.Since(began)
	st := &s.Stats
	if st.Ops.Load() < 600 {
		t.Fatalf("%d operations in 2 minutes", st.Ops.Load())
	}
	if st.Failed.Load() != 0 {
		t.Errorf("%d of %d operations failed", st.Failed.Load(), st.Ops.Load())
	}
	// The writers went at once (the test's pool holds four connections): more than one was busy
	// on average, or the run did not test what they share.
	if busy := time.Duration(st.BusyNanos.Load()); busy < 3*wall/2 {
		t.Errorf("writers busy %s in all over %s: not concurrent", busy, wall)
	}
	t.Logf("%d operations, %d declined, %d transactions", st.Ops.Load(), st.Declined.Load(), st.Transactions.Load())
	checkInvariants(t, db.Pool)
}

// TestCloseAccountWaitsForPostingsUnderWay closes the one account while another client's deposit
// on it is under way (its transaction holds the row): the close must pay out what the account
// holds once the deposit commits, not what it held before, or the bank refuses to close an
// account with money in it.
func TestCloseAccountWaitsForPostingsUnderWay(t *testing.T) {
	ctx := context.Background()
	db, s := streamOnBulk(t, 9, func(cfg *generator.Config) {
		cfg.Customers, cfg.Accounts, cfg.Transactions = 1, 1, 5
		cfg.Continuous.Actions = map[string]float64{"close_account": 1}
	})
	var id uuid.UUID
	if err := db.Pool.QueryRow(ctx, "SELECT account_id FROM accounts").Scan(&id); err != nil {
		t.Fatal(err)
	}
	other, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := bank.Post(ctx, other, bank.Posting{AccountID: id, Type: bank.Deposit, Amount: decimal.RequireFromString("10.00")}); err != nil {
		t.Fatal(err)
	}
	stepped := make(chan error, 1)
	go func() { stepped <- s.Step(ctx) }()
	// The close waits on the deposit's lock before the deposit commits.
	for waiting := 0; waiting == 0; {
		select {
		case err := <-stepped:
			t.Fatalf("the close returned (%v) while the deposit held the account: %+v", err, &s.Stats)
		case <-time.After(20 * time.Millisecond):
		}
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-stepped; err != nil {
		t.Fatalf("close: %v", err)
	}
	var status, balance string
	if err := db.Pool.QueryRow(ctx, "SELECT status, balance::text FROM accounts WHERE account_id = $1", id).Scan(&status, &balance); err != nil {
		t.Fatal(err)
	}
	if status != "INACTIVE" || balance != "0.00" || s.Stats.AccountsClosed.Load() != 1 {
		t.Fatalf("account %s, balance %s, %d closed; want INACTIVE, 0.00, 1", status, balance, s.Stats.AccountsClosed.Load())
	}
	checkInvariants(t, db.Pool)
}
