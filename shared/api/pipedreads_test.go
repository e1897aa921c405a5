package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
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

// heldConn withholds what Postgres answers until open is closed; arrived is closed once the
// first answer is in (the query has run, its snapshot taken).
type heldConn struct {
	net.Conn
	open, arrived chan struct{}
	once          sync.Once
}

func (c *heldConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.once.Do(func() { close(c.arrived) })
	<-c.open
	return n, err
}

func heldPipe() (*heldConn, func(net.Conn) net.Conn) {
	h := &heldConn{open: make(chan struct{}), arrived: make(chan struct{})}
	return h, func(c net.Conn) net.Conn { h.Conn = c; return h }
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

// waitSent waits until r has sent batches unanswered and waiting reads not yet sent.
func waitSent(t *testing.T, r *pipedReads, what string, sent, waiting int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		s, w := r.sent, len(r.waiting)
		r.mu.Unlock()
		if s == sent && w == waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d batches in flight and %d reads waiting, want %d and %d", what, s, w, sent, waiting)
		}
	}
}

// TestPipedReadsAnswers: many reads at once, repeated and unknown ids among them, each get its
// own account (or ErrNotFound), in fewer queries than reads.
func TestPipedReadsAnswers(t *testing.T) {
	db := pgtest.New(t)
	accounts := openAccounts(t, db, 5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newPipedReads(ctx, db.Pool, 2, nil)
	const reads = 400
	var wg sync.WaitGroup
	errs := make(chan error, reads)
	for i := range reads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%10 == 9 {
				if _, err := r.get(ctx, uuid.New()); !errors.Is(err, bank.ErrNotFound) {
					errs <- errors.New("an unknown id: want ErrNotFound, got " + errString(err))
				}
				return
			}
			want := accounts[i%len(accounts)]
			got, err := r.get(ctx, want.ID)
			if err != nil || got.ID != want.ID || !got.Balance.Equal(want.Balance) || got.Version != want.Version {
				errs <- errors.New("account " + want.ID.String() + ": got " + got.ID.String() + " " + got.Balance.String() + ", " + errString(err))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r.mu.Lock()
	batches := r.batches
	r.mu.Unlock()
	if batches >= reads {
		t.Errorf("%d reads took %d queries: not batched", reads, batches)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestPipedReadsSeeEarlierWrites: a read that arrives after a deposit committed, while a batch
// older than the deposit is in flight (run, its answer not yet read), shows the deposit: it goes
// in a later batch, never answered from the one in flight.
func TestPipedReadsSeeEarlierWrites(t *testing.T) {
	db := pgtest.New(t)
	accounts := openAccounts(t, db, 2)
	a, b := accounts[0], accounts[1]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	held, wrap := heldPipe()
	r := newPipedReads(ctx, db.Pool, 2, wrap)

	first := make(chan answerOrErr, 1)
	go func() { got, err := r.get(ctx, a.ID); first <- answerOrErr{got, err} }()
	<-held.arrived
	// A second batch fills the pipeline, so the read after the deposit must wait for a slot
	// while the first batch, older than the deposit, is answered.
	other := make(chan answerOrErr, 1)
	go func() { got, err := r.get(ctx, b.ID); other <- answerOrErr{got, err} }()
	waitSent(t, r, "a read of another account", 2, 0)
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := bank.Post(ctx, tx, bank.Posting{AccountID: a.ID, Type: bank.Deposit, Amount: decimal.RequireFromString("5.00")})
		return err
	})
	if err != nil {
		t.Fatalf("deposit: %v", err)
	}
	second := make(chan answerOrErr, 1)
	go func() { got, err := r.get(ctx, a.ID); second <- answerOrErr{got, err} }()
	waitSent(t, r, "the read after the deposit", 2, 1)
	close(held.open)
	checkDepositSeen(t, first, second)
	if o := <-other; o.err != nil || o.a.ID != b.ID {
		t.Errorf("the other account's read: %s, %v", o.a.ID, o.err)
	}
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

// TestPipedReadsCancelledWaiter: a read that gives up while waiting for its batch gets its
// context's error at once, and the batch it was in still answers the others.
func TestPipedReadsCancelledWaiter(t *testing.T) {
	db := pgtest.New(t)
	accounts := openAccounts(t, db, 2)
	ctx, cancelServer := context.WithCancel(context.Background())
	defer cancelServer()
	held, wrap := heldPipe()
	r := newPipedReads(ctx, db.Pool, 1, wrap)

	first := make(chan error, 1)
	go func() { _, err := r.get(context.Background(), accounts[0].ID); first <- err }()
	<-held.arrived
	reqCtx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, err := r.get(reqCtx, accounts[1].ID); gaveUp <- err }()
	stays := make(chan answerOrErr, 1)
	go func() { got, err := r.get(context.Background(), accounts[1].ID); stays <- answerOrErr{got, err} }()
	waitSent(t, r, "two reads behind the held batch", 1, 2)
	cancel()
	select {
	case err := <-gaveUp:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled waiter got %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled waiter still waits for its batch")
	}
	close(held.open)
	if err := <-first; err != nil {
		t.Errorf("first read: %v", err)
	}
	if got := <-stays; got.err != nil || got.a.ID != accounts[1].ID {
		t.Errorf("the waiter that stayed got %v, %v; want account %s", got.a.ID, got.err, accounts[1].ID)
	}
}

// TestPipedReadsLostConnection: when the pipe's backend dies, the reads on it fail (the fast GET
// then falls through to Huma), and the next read opens another connection.
func TestPipedReadsLostConnection(t *testing.T) {
	db := pgtest.New(t)
	a := openAccounts(t, db, 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	held, wrap := heldPipe()
	r := newPipedReads(ctx, db.Pool, 2, wrap)
	close(held.open)
	if _, err := r.get(ctx, a.ID); err != nil {
		t.Fatalf("first read: %v", err)
	}
	r.mu.Lock()
	pid := r.pipe.pid
	r.mu.Unlock()
	if _, err := db.Pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)); err != nil {
		t.Fatal(err)
	}
	// The read after the backend died may fail; the one after it must not.
	for i := range 2 {
		got, err := r.get(ctx, a.ID)
		if err != nil && i == 1 {
			t.Fatalf("read after the connection was lost: %v", err)
		}
		if err == nil && got.ID != a.ID {
			t.Fatalf("read %d: got account %s, want %s", i, got.ID, a.ID)
		}
	}
	r.mu.Lock()
	if r.pipe == nil || r.pipe.pid == pid {
		t.Errorf("no new connection after the old one's backend ended")
	}
	r.mu.Unlock()
}

// TestPipedReadsStop: once the server's context ends the pipe's connection closes, and reads
// still get their answer (through the pool).
func TestPipedReadsStop(t *testing.T) {
	db := pgtest.New(t)
	a := openAccounts(t, db, 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	r := newPipedReads(ctx, db.Pool, 2, nil)
	if _, err := r.get(context.Background(), a.ID); err != nil {
		t.Fatalf("read: %v", err)
	}
	r.mu.Lock()
	pid := r.pipe.pid
	r.mu.Unlock()
	cancel()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int32(pid)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pipe's connection stayed open after the server stopped")
		}
	}
	if got, err := r.get(context.Background(), a.ID); err != nil || got.ID != a.ID {
		t.Errorf("read after stopping: %v, %v", got.ID, err)
	}
}

// TestPipedReadsScanAsPgx: the pipe decodes rows with scan plans it keeps from row to row; rows
// that differ where a kept plan could go wrong (a nickname and none, other balances and
// versions), in one batch and across batches, read the same as pgx reads them (bank.GetAccount).
func TestPipedReadsScanAsPgx(t *testing.T) {
	db := pgtest.New(t)
	accounts := openAccounts(t, db, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nick := "rainy day \"fund\""
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := bank.UpdateAccount(ctx, tx, accounts[1].ID, bank.AccountChange{Nickname: &nick}, nil); err != nil {
			return err
		}
		_, err := bank.Post(ctx, tx, bank.Posting{AccountID: accounts[2].ID, Type: bank.Deposit, Amount: decimal.RequireFromString("0.07")})
		return err
	})
	if err != nil {
		t.Fatalf("change accounts: %v", err)
	}
	r := newPipedReads(ctx, db.Pool, 2, nil)
	check := func(what string, id uuid.UUID) error {
		want, err := bank.GetAccount(ctx, db.Pool, id)
		if err != nil {
			return fmt.Errorf("%s: read through the pool: %w", what, err)
		}
		got, err := r.get(ctx, id)
		if err != nil {
			return fmt.Errorf("%s: read through the pipe: %w", what, err)
		}
		same := (got.Nickname == nil) == (want.Nickname == nil) && (got.Nickname == nil || *got.Nickname == *want.Nickname) &&
			got.Balance.Equal(want.Balance) && got.CreatedAt.Equal(want.CreatedAt) && got.UpdatedAt.Equal(want.UpdatedAt)
		rest, wantRest := got, want // the fields == compares alike
		rest.Nickname, wantRest.Nickname = nil, nil
		rest.Balance, wantRest.Balance = decimal.Zero, decimal.Zero
		rest.CreatedAt, rest.UpdatedAt = want.CreatedAt, want.UpdatedAt
		if !same || rest != wantRest {
			return fmt.Errorf("%s: the pipe read %+v, pgx %+v", what, got, want)
		}
		return nil
	}
	// One at a time: each row after another with a kept plan.
	for round := range 2 {
		for i, a := range accounts {
			if err := check(fmt.Sprintf("round %d, account %d", round, i), a.ID); err != nil {
				t.Error(err)
			}
		}
	}
	// At once: several rows in one batch.
	var wg sync.WaitGroup
	errs := make(chan error, len(accounts))
	for i, a := range accounts {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- check(fmt.Sprintf("at once, account %d", i), a.ID) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestPipedReadsHeldBackGoAtOnce: reads that arrive while the pipeline is full go as soon as a
// slot frees, without the sender's yield (which would put them behind every response of the batch
// just answered, Postgres idle meanwhile); a read that finds a free slot still waits the yield,
// so that the requests being read join its batch.
func TestPipedReadsHeldBackGoAtOnce(t *testing.T) {
	db := pgtest.New(t)
	accounts := openAccounts(t, db, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	held, wrap := heldPipe()
	r := newPipedReads(ctx, db.Pool, 1, wrap)
	var yields atomic.Int32
	r.yield = func() { yields.Add(1); runtime.Gosched() } // before any read: the sender has not run it yet

	first := make(chan answerOrErr, 1)
	go func() { got, err := r.get(ctx, accounts[0].ID); first <- answerOrErr{got, err} }()
	<-held.arrived
	second := make(chan answerOrErr, 1)
	go func() { got, err := r.get(ctx, accounts[1].ID); second <- answerOrErr{got, err} }()
	waitSent(t, r, "a read behind the full pipeline", 1, 1)
	close(held.open)
	for i, c := range []chan answerOrErr{first, second} {
		if got := <-c; got.err != nil || got.a.ID != accounts[i].ID {
			t.Fatalf("read %d: %v, %v; want account %s", i, got.a.ID, got.err, accounts[i].ID)
		}
	}
	if n := yields.Load(); n != 1 {
		t.Errorf("the sender yielded %d times for a batch with a free slot and one held back, want once (the first)", n)
	}
	if _, err := r.get(ctx, accounts[0].ID); err != nil {
		t.Fatalf("read with the pipeline empty: %v", err)
	}
	if n := yields.Load(); n != 2 {
		t.Errorf("after a read that found the pipeline empty the sender has yielded %d times, want 2", n)
	}
}
