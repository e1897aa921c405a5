package api

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// gatedDB counts the queries accountReads sends and holds the single-account reads until the
// gate opens, so a test can line requests up behind an in-flight query.
type gatedDB struct {
	bank.Querier
	gate         chan struct{}
	single, many atomic.Int32
}

// QueryRow sends the query before it waits at the gate: pgx returns once Postgres has started
// the statement (its row description arrived), so the read's snapshot predates whatever the
// test commits while it is held.
func (g *gatedDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	row := g.Querier.QueryRow(ctx, sql, args...)
	g.single.Add(1)
	<-g.gate
	return row
}

func (g *gatedDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	g.many.Add(1)
	return g.Querier.Query(ctx, sql, args...)
}

// openAccounts opens n accounts holding 10.00 each.
func openAccounts(t *testing.T, db *pgtest.DB, n int) []bank.Account {
	t.Helper()
	ctx := context.Background()
	c, err := bank.CreateCustomer(ctx, db.Pool, uuid.Nil, bank.CustomerFields{FirstName: "Ada", LastName: "Byron", Email: "ada@example.com"})
	if err != nil {
		t.Fatalf("create customer: %v", err)
	}
	out := make([]bank.Account, n)
	for i := range out {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			a, err := bank.OpenAccount(ctx, tx, bank.NewAccount{CustomerID: c.ID, Type: bank.Checking, Currency: "USD"})
			if err != nil {
				return err
			}
			if _, err := bank.Post(ctx, tx, bank.Posting{AccountID: a.ID, Type: bank.Deposit, Amount: decimal.RequireFromString("10.00")}); err != nil {
				return err
			}
			out[i], err = bank.GetAccount(ctx, tx, a.ID)
			return err
		})
		if err != nil {
			t.Fatalf("open account: %v", err)
		}
	}
	return out
}

// waitFor polls until r has n requests waiting behind the in-flight query.
func waitFor(t *testing.T, r *accountReads, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		r.mu.Lock()
		got := len(r.waiting)
		r.mu.Unlock()
		if got == n {
			return
		}
	}
	t.Fatalf("%d requests never lined up behind the in-flight read", n)
}

// TestAccountReadsBatch lines requests up behind a held read: they must be answered by one
// query, each with its own account (or 404 for an unknown id), and every slot given back.
func TestAccountReadsBatch(t *testing.T) {
	db := pgtest.New(t)
	accounts := openAccounts(t, db, 5)
	missing := uuid.New()
	g := &gatedDB{Querier: db.Pool, gate: make(chan struct{})}
	r := &accountReads{db: g, limit: 1}
	ctx := context.Background()

	type answer struct {
		a   bank.Account
		err error
	}
	ids := []uuid.UUID{accounts[0].ID, accounts[1].ID, accounts[2].ID, accounts[2].ID, missing, accounts[3].ID, accounts[4].ID}
	answers := make([]answer, len(ids))
	var wg sync.WaitGroup
	get := func(i int) {
		defer wg.Done()
		answers[i].a, answers[i].err = r.get(ctx, ids[i])
	}
	wg.Add(1)
	go get(0)
	for g.single.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < len(ids); i++ {
		wg.Add(1)
		go get(i)
	}
	waitFor(t, r, len(ids)-1)
	close(g.gate)
	wg.Wait()

	for i, id := range ids {
		switch {
		case id == missing:
			if !errors.Is(answers[i].err, bank.ErrNotFound) {
				t.Errorf("unknown id %s: got %v, want ErrNotFound", id, answers[i].err)
			}
		case answers[i].err != nil:
			t.Errorf("account %s: %v", id, answers[i].err)
		case answers[i].a.ID != id || !answers[i].a.Balance.Equal(decimal.RequireFromString("10.00")):
			t.Errorf("asked for %s, got account %s with balance %s", id, answers[i].a.ID, answers[i].a.Balance)
		}
	}
	if s, m := g.single.Load(), g.many.Load(); s != 1 || m != 1 {
		t.Errorf("%d reads were answered by %d single and %d batched queries, want 1 and 1", len(ids), s, m)
	}
	// The batch gives its slot back just after answering: wait for that, briefly.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		inFlight, waiting := r.inFlight, len(r.waiting)
		r.mu.Unlock()
		if inFlight == 0 && waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the reads %d queries count as in flight and %d requests wait, want 0 and 0", inFlight, waiting)
		}
	}
}

// TestAccountReadsSeeEarlierWrites: a request that waits behind an in-flight read must still
// see a write committed before it arrived, which the in-flight read began too early to see.
func TestAccountReadsSeeEarlierWrites(t *testing.T) {
	db := pgtest.New(t)
	a := openAccounts(t, db, 1)[0]
	g := &gatedDB{Querier: db.Pool, gate: make(chan struct{})}
	r := &accountReads{db: g, limit: 1}
	ctx := context.Background()

	first := make(chan answerOrErr, 1)
	go func() { got, err := r.get(ctx, a.ID); first <- answerOrErr{got, err} }()
	for g.single.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := bank.Post(ctx, tx, bank.Posting{AccountID: a.ID, Type: bank.Deposit, Amount: decimal.RequireFromString("5.00")})
		return err
	})
	if err != nil {
		t.Fatalf("deposit: %v", err)
	}
	second := make(chan answerOrErr, 1)
	go func() { got, err := r.get(ctx, a.ID); second <- answerOrErr{got, err} }()
	waitFor(t, r, 1)
	close(g.gate)
	checkDepositSeen(t, first, second)
}

// checkDepositSeen: first, the read in flight before a 5.00 deposit to an account of 10.00,
// shows 10.00, and second, the read that arrived after the deposit committed, 15.00.
func checkDepositSeen(t *testing.T, first, second <-chan answerOrErr) {
	t.Helper()
	// The test is only worth something if the read in flight saw the old balance, which a read
	// answered from it would see too.
	if f := <-first; f.err != nil {
		t.Fatalf("first read: %v", f.err)
	} else if want := decimal.RequireFromString("10.00"); !f.a.Balance.Equal(want) {
		t.Fatalf("the read in flight before the deposit shows balance %s, want %s", f.a.Balance, want)
	}
	got := <-second
	if got.err != nil {
		t.Fatalf("second read: %v", got.err)
	}
	if want := decimal.RequireFromString("15.00"); !got.a.Balance.Equal(want) {
		t.Errorf("a read sent after a 5.00 deposit committed shows balance %s, want %s", got.a.Balance, want)
	}
}

type answerOrErr struct {
	a   bank.Account
	err error
}

// TestAccountReadsCancelledWaiter: a request that gives up while waiting gets its context's
// error at once, and the batch it left still answers the others.
func TestAccountReadsCancelledWaiter(t *testing.T) {
	db := pgtest.New(t)
	accounts := openAccounts(t, db, 2)
	g := &gatedDB{Querier: db.Pool, gate: make(chan struct{})}
	r := &accountReads{db: g, limit: 1}

	first := make(chan error, 1)
	go func() { _, err := r.get(context.Background(), accounts[0].ID); first <- err }()
	for g.single.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, err := r.get(ctx, accounts[1].ID); gaveUp <- err }()
	stays := make(chan answerOrErr, 1)
	go func() { got, err := r.get(context.Background(), accounts[1].ID); stays <- answerOrErr{got, err} }()
	waitFor(t, r, 2)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter got %v, want context.Canceled", err)
	}
	close(g.gate)
	if err := <-first; err != nil {
		t.Errorf("first read: %v", err)
	}
	if got := <-stays; got.err != nil || got.a.ID != accounts[1].ID {
		t.Errorf("the waiter that stayed got %v, %v; want account %s", got.a.ID, got.err, accounts[1].ID)
	}
}
