package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// tripCounter is a TCP proxy in front of Postgres that counts round trips: one each time a
// client speaks after the server has (a pipeline is one write, its answers one turn).
type tripCounter struct {
	mu    sync.Mutex
	trips int
}

func (c *tripCounter) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.trips
	c.trips = 0
	return n
}

// proxy starts the counter in front of dbURL's server and returns dbURL pointed at it.
func (c *tripCounter) proxy(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil || u.Host == "" {
		t.Fatalf("database url %q is not a URL with a host: %v", database.Redact(dbURL), err)
	}
	target := u.Host
	// The password file names the server's port, not the proxy's: carry the password over.
	cfg, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("parse database url: %v", err)
	}
	u.User = url.UserPassword(cfg.User, cfg.Password)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go c.relay(client, target)
		}
	}()
	u.Host = ln.Addr().String()
	return u.String()
}

func (c *tripCounter) relay(client net.Conn, target string) {
	defer client.Close()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer server.Close()
	serverSpoke := true // the client's startup message is the first trip
	pump := func(from, to net.Conn, fromClient bool) {
		buf := make([]byte, 64<<10)
		for {
			n, err := from.Read(buf)
			if n > 0 {
				// Marked before forwarding, so the client cannot answer before it is counted.
				c.mu.Lock()
				if fromClient && serverSpoke {
					c.trips++
				}
				serverSpoke = !fromClient
				c.mu.Unlock()
				if _, werr := to.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return // io.EOF included: the other side hangs up
			}
		}
	}
	done := make(chan struct{})
	go func() { pump(server, client, false); client.Close(); close(done) }()
	pump(client, server, true)
	server.Close()
	<-done
}

// onePool is a pool of one connection to dbURL, so that a test sees which connection it gets.
func onePool(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := database.Open(context.Background(), dbURL, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// twoAccounts opens a customer with two USD accounts holding 100.00 each through the API.
func twoAccounts(t *testing.T, e *env) (string, string) {
	t.Helper()
	_, ids := newAccounts(t, e, "trips@example.com", "USD", 2)
	return ids[0], ids[1]
}

// newAccounts opens a customer (email) with n CHECKING accounts in currency holding 100.00 each
// through the API and returns the customer's id and theirs.
func newAccounts(t *testing.T, e *env, email, currency string, n int) (string, []string) {
	t.Helper()
	tr := e.transports[0]
	var c Customer
	call(t, tr, request{method: "POST", path: "/customers", token: e.rw, body: map[string]any{
		"first_name": "Account", "last_name": "Holder", "email": email}}, http.StatusCreated).json(t, &c)
	ids := make([]string, n)
	for i := range ids {
		var a Account
		call(t, tr, request{method: "POST", path: "/accounts", token: e.rw, body: map[string]any{
			"customer_id": c.CustomerID, "account_type": "CHECKING", "currency": currency, "opening_deposit": "100.00"}}, http.StatusCreated).json(t, &a)
		ids[i] = a.AccountID
	}
	return c.CustomerID, ids
}

// TestPostTransactionRoundTrips counts the round trips a posting makes to Postgres, each shape
// measured after a first run that prepares its statements.
func TestPostTransactionRoundTrips(t *testing.T) {
	db := pgtest.New(t)
	var counter tripCounter
	pool := onePool(t, counter.proxy(t, db.URL))
	e := newEnv(t, func(c *Config) { c.Pool = pool })
	from, to := twoAccounts(t, e)
	tr := e.transports[0]
	transfer := map[string]any{"account_id": from, "related_account_id": to, "transaction_type": "TRANSFER", "amount": "1.00"}
	withCurrency := map[string]any{"account_id": from, "related_account_id": to, "transaction_type": "TRANSFER", "amount": "1.00", "currency": "USD"}
	tooMuch := map[string]any{"account_id": from, "related_account_id": to, "transaction_type": "TRANSFER", "amount": "1000.00"}
	cases := []struct {
		name  string
		body  map[string]any
		keyed bool
		want  int
		trips int
	}{
		// BEGIN with the lock query; the writes with COMMIT.
		{"transfer", transfer, false, http.StatusCreated, 2},
		// The currency is checked before the writes, so COMMIT still goes with them.
		{"transfer naming its currency", withCurrency, false, http.StatusCreated, 2},
		// BEGIN with the key's lock; the key read; the lock; the writes; the record; COMMIT.
		{"transfer with an Idempotency-Key", transfer, true, http.StatusCreated, 6},
		// BEGIN with the lock query; ROLLBACK.
		{"refused transfer", tooMuch, false, http.StatusUnprocessableEntity, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Run 0 prepares the statements. The pool pings a connection idle for over a
			// second before handing it out, an extra trip a loaded machine may cause: the
			// fewest of three runs counts.
			fewest := 0
			for run := range 4 {
				r := request{method: "POST", path: "/transactions", token: e.rw, body: tc.body}
				if tc.keyed {
					r.header = map[string]string{"Idempotency-Key": uuid.NewString()}
				}
				counter.take()
				call(t, tr, r, tc.want)
				if got := counter.take(); run == 1 || run > 1 && got < fewest {
					fewest = got
				}
			}
			if fewest != tc.trips {
				t.Errorf("%d round trips, want %d", fewest, tc.trips)
			}
		})
	}
}

// balances reads the two accounts' balances and the number of transfers between them.
func balances(t *testing.T, db *pgtest.DB, from, to string) (string, string, int) {
	t.Helper()
	ctx := context.Background()
	var a, b decimal.Decimal
	var n int
	err := db.Pool.QueryRow(ctx, `SELECT (SELECT balance FROM accounts WHERE account_id = $1),
		(SELECT balance FROM accounts WHERE account_id = $2),
		(SELECT count(*) FROM transactions WHERE transaction_type = 'TRANSFER')`, from, to).Scan(&a, &b, &n)
	if err != nil {
		t.Fatalf("read balances: %v", err)
	}
	return a.StringFixed(2), b.StringFixed(2), n
}

// connState is the backend behind a one-connection pool and how many sessions of the database
// sit inside a transaction.
func connState(t *testing.T, db *pgtest.DB, pool *pgxpool.Pool) (pid, inTx int) {
	t.Helper()
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatalf("backend pid: %v", err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&inTx); err != nil {
		t.Fatalf("sessions in a transaction: %v", err)
	}
	return pid, inTx
}

// TestTransferFailingInSecondTrip makes the pipelined writes (or the COMMIT sent with them)
// fail: nothing may be written, and the connection must go back to the pool idle and usable.
func TestTransferFailingInSecondTrip(t *testing.T) {
	cases := []struct{ name, trigger string }{
		{"a write of the batch fails", `CREATE TRIGGER fail BEFORE INSERT ON transactions
			FOR EACH ROW EXECUTE FUNCTION fail()`},
		{"the COMMIT sent with the batch fails", `CREATE CONSTRAINT TRIGGER fail AFTER INSERT ON transactions
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail()`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := pgtest.New(t)
			pool := onePool(t, db.URL)
			e := newEnv(t, func(c *Config) { c.Pool = pool })
			from, to := twoAccounts(t, e)
			tr := e.transports[0]
			body := map[string]any{"account_id": from, "related_account_id": to, "transaction_type": "TRANSFER", "amount": "10.00"}
			call(t, tr, request{method: "POST", path: "/transactions", token: e.rw, body: body}, http.StatusCreated)
			pid, _ := connState(t, db, pool)
			if _, err := db.Pool.Exec(ctx, `CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS
				$$ BEGIN RAISE EXCEPTION 'forced failure'; END $$`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Pool.Exec(ctx, tc.trigger); err != nil {
				t.Fatal(err)
			}
			call(t, tr, request{method: "POST", path: "/transactions", token: e.rw, body: body}, http.StatusInternalServerError)
			if a, b, n := balances(t, db, from, to); a != "90.00" || b != "110.00" || n != 1 {
				t.Errorf("after the failed transfer: balances %s and %s, %d transfers; want 90.00, 110.00 and 1", a, b, n)
			}
			if after, open := connState(t, db, pool); after != pid || open != 0 {
				t.Errorf("connection %d -> %d, %d sessions in a transaction: want the same one back, idle", pid, after, open)
			}
			if _, err := db.Pool.Exec(ctx, `DROP TRIGGER fail ON transactions`); err != nil {
				t.Fatal(err)
			}
			call(t, tr, request{method: "POST", path: "/transactions", token: e.rw, body: body}, http.StatusCreated)
			if a, b, n := balances(t, db, from, to); a != "80.00" || b != "120.00" || n != 2 {
				t.Errorf("after the next transfer: balances %s and %s, %d transfers; want 80.00, 120.00 and 2", a, b, n)
			}
		})
	}
}

// centAccount opens an account with 10.00 on db and a one-connection pool to it.
func centAccount(t *testing.T) (*pgtest.DB, *pgxpool.Pool, uuid.UUID) {
	t.Helper()
	db := pgtest.New(t)
	return db, onePool(t, db.URL), openAccounts(t, db, 1)[0].ID
}

func balanceOf(t *testing.T, db *pgtest.DB, id uuid.UUID) string {
	t.Helper()
	a, err := bank.GetAccount(context.Background(), db.Pool, id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance.StringFixed(2)
}

const addCent = `UPDATE accounts SET balance = balance + 0.01 WHERE account_id = $1`

// TestCancelBetweenTrips cancels the request after the first round trip (BEGIN and a write):
// the second never commits, the write is rolled back and no session stays in a transaction.
func TestCancelBetweenTrips(t *testing.T) {
	db, pool, id := centAccount(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := inTxEnding(ctx, pool, func(tx *pipedTx) (ending[struct{}], error) {
		if _, err := tx.Exec(ctx, addCent, id); err != nil {
			return ending[struct{}]{}, err
		}
		cancel()
		return then(cents(id), readWrites(1)), nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if got := balanceOf(t, db, id); got != "10.00" {
		t.Errorf("balance %s after the cancelled transaction, want 10.00", got)
	}
	if _, open := connState(t, db, pool); open != 0 {
		t.Errorf("%d sessions left in a transaction", open)
	}
}

// TestInTxRetriesWholeTransaction fails the first attempt with a deadlock after it wrote: the
// write is rolled back and the second attempt's, ending with a batch, commits once.
func TestInTxRetriesWholeTransaction(t *testing.T) {
	db, pool, id := centAccount(t)
	ctx := context.Background()
	attempts := 0
	_, err := inTxEnding(ctx, pool, func(tx *pipedTx) (ending[struct{}], error) {
		attempts++
		if _, err := tx.Exec(ctx, addCent, id); err != nil {
			return ending[struct{}]{}, err
		}
		if attempts == 1 {
			return ending[struct{}]{}, &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
		}
		return then(cents(id), readWrites(1)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if attempts != 2 {
		t.Errorf("%d attempts, want 2", attempts)
	}
	if got := balanceOf(t, db, id); got != "10.02" {
		t.Errorf("balance %s, want 10.02 (the second attempt's two cents only)", got)
	}
}

// cents is a batch adding a cent to each of ids.
func cents(ids ...uuid.UUID) *pgx.Batch {
	b := &pgx.Batch{}
	for _, id := range ids {
		b.Queue(addCent, id)
	}
	return b
}

// readWrites reads the n results of a batch of writes.
func readWrites(n int) func(pgx.BatchResults) (*struct{}, error) {
	return func(br pgx.BatchResults) (*struct{}, error) {
		for range n {
			if _, err := br.Exec(); err != nil {
				return nil, err
			}
		}
		return &struct{}{}, nil
	}
}

// TestInTxEnding holds the rule that inTx alone commits, with the batch fn ends with in the
// same round trip: a batch fn sends itself never commits, an error fn returns after writing
// rolls everything back, and an ending whose batch fails commits nothing.
func TestInTxEnding(t *testing.T) {
	ctx := context.Background()
	type fn = func(tx *pipedTx, id uuid.UUID) (ending[struct{}], error)
	var none ending[struct{}]
	write := func(tx *pipedTx, id uuid.UUID) error { _, err := tx.Exec(ctx, addCent, id); return err }
	overdraw := func(id uuid.UUID) *pgx.Batch {
		b := cents(id)
		b.Queue(`UPDATE accounts SET balance = balance - 1000 WHERE account_id = $1`, id)
		return b
	}
	cases := []struct {
		name    string
		fn      fn
		wantErr string // a part of the error, "" for none
		balance string
		trips   int
	}{
		{"a write, then the ending batch: COMMIT goes with the batch", func(tx *pipedTx, id uuid.UUID) (ending[struct{}], error) {
			if err := write(tx, id); err != nil {
				return none, err
			}
			return then(cents(id, id), readWrites(2)), nil
		}, "", "10.03", 2},
		{"the ending batch alone: BEGIN, the batch and COMMIT in one trip", func(_ *pipedTx, id uuid.UUID) (ending[struct{}], error) {
			return then(cents(id), readWrites(1)), nil
		}, "", "10.01", 1},
		{"done after a write: COMMIT in a trip of its own", func(tx *pipedTx, id uuid.UUID) (ending[struct{}], error) {
			return done(&struct{}{}), write(tx, id)
		}, "", "10.01", 2},
		{"a batch fn sends itself does not commit: an error after it rolls it back", func(tx *pipedTx, id uuid.UUID) (ending[struct{}], error) {
			if err := tx.SendBatch(ctx, cents(id)).Close(); err != nil {
				return none, err
			}
			return none, errors.New("refused after the write")
		}, "refused after the write", "10.00", 2},
		{"the ending batch fails: nothing commits", func(tx *pipedTx, id uuid.UUID) (ending[struct{}], error) {
			if err := write(tx, id); err != nil {
				return none, err
			}
			return then(overdraw(id), readWrites(2)), nil
		}, "violates check constraint", "10.00", 3},
		{"Postgres took the batch, its answer unreadable: the error says it committed", func(_ *pipedTx, id uuid.UUID) (ending[struct{}], error) {
			return then(cents(id), func(pgx.BatchResults) (*struct{}, error) { return nil, errors.New("cannot decode") }), nil
		}, "transaction committed, its answer unread: cannot decode", "10.01", 1},
	}
	db := pgtest.New(t)
	accounts := openAccounts(t, db, len(cases))
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var counter tripCounter
			pool := onePool(t, counter.proxy(t, db.URL))
			id := accounts[i].ID
			// Prepares every statement (BEGIN, COMMIT and ROLLBACK included) on uuid.Nil, which
			// matches no row, so that what is counted is the transaction's own trips.
			warm := func(tx *pipedTx) (ending[struct{}], error) {
				if err := write(tx, uuid.Nil); err != nil {
					return none, err
				}
				return then(overdraw(uuid.Nil), readWrites(2)), nil
			}
			if _, err := inTxEnding(ctx, pool, warm); err != nil {
				t.Fatal(err)
			}
			if _, err := inTx(ctx, pool, func(tx *pipedTx) (*struct{}, error) { return nil, write(tx, uuid.Nil) }); err != nil {
				t.Fatal(err)
			}
			if _, err := inTx(ctx, pool, func(tx *pipedTx) (*struct{}, error) {
				return nil, errors.Join(write(tx, uuid.Nil), errors.New("roll back"))
			}); err == nil {
				t.Fatal("the warm-up's rollback did not happen")
			}
			counter.take()
			_, err := inTxEnding(ctx, pool, func(tx *pipedTx) (ending[struct{}], error) { return tc.fn(tx, id) })
			trips := counter.take()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
			}
			if got := balanceOf(t, db, id); got != tc.balance {
				t.Errorf("balance %s, want %s", got, tc.balance)
			}
			if trips != tc.trips {
				t.Errorf("%d round trips, want %d", trips, tc.trips)
			}
			if _, open := connState(t, db, pool); open != 0 {
				t.Errorf("%d sessions left in a transaction", open)
			}
		})
	}
}
