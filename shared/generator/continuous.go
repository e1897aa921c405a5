package generator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/money"
)

// Stats counts what continuous mode did, by the change it made. Safe to read while it runs.
type Stats struct {
	Ops              atomic.Int64
	CustomersCreated atomic.Int64
	CustomersUpdated atomic.Int64
	CustomersClosed  atomic.Int64
	CustomersDeleted atomic.Int64
	AccountsOpened   atomic.Int64
	AccountsClosed   atomic.Int64
	AccountsReopened atomic.Int64
	Transactions     atomic.Int64
	Reversals        atomic.Int64
	// Declined counts postings the bank refused (funds moved under us by another writer, say):
	// business as usual, not failures.
	Declined atomic.Int64
	Failed   atomic.Int64
	// BusyNanos is the time spent in operations, summed over the writers: over the wall time, it
	// is how many writers were busy on average; near their number, the writers are saturated
	// (their operations' round trips and commits bound the rate, not the pacing).
	BusyNanos atomic.Int64
}

// liveAccount is what continuous mode remembers of an account; the database stays the truth.
type liveAccount struct {
	id, customer uuid.UUID
	currency     string
	active       bool
}

// Stream posts random activity through the bank package at cfg.Continuous.Rate operations
// per second until ctx ends, up to cfg.Continuous.Writers at once: deposits, withdrawals,
// transfers, reversals, new and changed customers, accounts opened and closed, prospects deleted.
// Its choices follow the seed (with one writer, the same seed gives the same operations); ids
// come from the database so a restart never collides with earlier rows.
type Stream struct {
	cfg  Config
	pool *pgxpool.Pool
	// mu guards what follows: the writers draw their choices and note their results under it, and
	// talk to the database without it. What it remembers may lag the database by the operations
	// under way; a choice made on it that the database refuses is declined, as another client's
	// change would make it.
	mu       sync.Mutex
	src      *source
	actions  weighted
	kinds    weighted
	types    weighted
	currs    weighted
	accounts []liveAccount // only appended to, so an index stays an account's
	// customers maps every open customer to how many accounts it has opened.
	customers map[uuid.UUID]int
	custList  []uuid.UUID
	recent    []uuid.UUID // recent transactions, candidates for reversal
	serial    int64
	Stats     Stats
}

// NewStream reads the current customers and accounts so activity continues where the
// database stands (after a bulk load, a restart, or writes through the API).
func NewStream(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Stream, error) {
	g := &Stream{cfg: cfg, pool: pool, src: newSource(cfg.Seed, 2),
		actions: newWeighted(cfg.Continuous.Actions), kinds: newWeighted(cfg.TransactionTypes),
		types: newWeighted(cfg.AccountTypes), currs: newWeighted(cfg.Currencies),
		customers: map[uuid.UUID]int{}}
	rows, err := pool.Query(ctx, `SELECT c.customer_id, count(a.account_id)
		FROM customers c LEFT JOIN accounts a USING (customer_id)
		WHERE c.closed_at IS NULL GROUP BY c.customer_id ORDER BY c.customer_id`)
	if err != nil {
		return nil, fmt.Errorf("generator: read customers: %w", err)
	}
	for rows.Next() {
		var id uuid.UUID
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("generator: read customers: %w", err)
		}
		g.customers[id] = n
		g.custList = append(g.custList, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("generator: read customers: %w", err)
	}
	rows, err = pool.Query(ctx, `SELECT account_id, customer_id, currency, status = 'ACTIVE' FROM accounts ORDER BY account_id`)
	if err != nil {
		return nil, fmt.Errorf("generator: read accounts: %w", err)
	}
	for rows.Next() {
		var a liveAccount
		if err := rows.Scan(&a.id, &a.customer, &a.currency, &a.active); err != nil {
			return nil, fmt.Errorf("generator: read accounts: %w", err)
		}
		g.accounts = append(g.accounts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("generator: read accounts: %w", err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM customers`).Scan(&g.serial); err != nil {
		return nil, fmt.Errorf("generator: count customers: %w", err)
	}
	return g, nil
}

// Run generates until ctx ends. It returns nil on cancellation, once the operations under way
// are done; a failing operation is logged and counted, and the next one goes on.
func (g *Stream) Run(ctx context.Context) error {
	run(ctx, g.cfg.Continuous.Rate, g.cfg.Continuous.Writers, func(ctx context.Context) {
		began := time.Now()
		err := g.Step(ctx)
		g.Stats.BusyNanos.Add(int64(time.Since(began)))
		if err != nil && ctx.Err() == nil {
			g.Stats.Failed.Add(1)
			slog.Warn("generator operation failed", "err", err)
		}
	})
	return nil
}

// run calls op at rate, each call on a goroutine of its own and at most writers at once, until
// ctx ends, then waits for the calls under way. A writer is taken before the pacer is asked for
// a turn, so turns missed while every writer was busy are made up as the pacer allows (maxLag).
func run(ctx context.Context, rate float64, writers int, op func(context.Context)) {
	p := newPacer(rate, time.Now())
	free := make(chan struct{}, writers)
	for range writers {
		free <- struct{}{}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-free:
		}
		if d := p.wait(time.Now()); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		wg.Go(func() {
			defer func() { free <- struct{}{} }()
			op(ctx)
		})
	}
}

// pacer spaces operations at a rate by a schedule, not a ticker: operation n is due at start +
// n·interval, so one that took longer than an interval is made up by the next ones going at
// once (a ticker drops the ticks it missed, and operations whose latency swings around the
// interval then fall well short of the rate with the writer idle between them). How far it
// makes up is bounded by maxLag, so a writer that was stopped (a stall, SIGSTOP) does not burst.
type pacer struct {
	interval time.Duration
	next     time.Time
}

// maxLag is how far behind its schedule the pacer catches up: a second of operations.
const maxLag = time.Second

func newPacer(rate float64, start time.Time) *pacer {
	return &pacer{interval: time.Duration(float64(time.Second) / rate), next: start}
}

// wait is how long to wait at now before the next operation (0: go now); it books that
// operation's turn.
func (p *pacer) wait(now time.Time) time.Duration {
	if behind := now.Sub(p.next); behind > maxLag {
		p.next = now.Add(-maxLag)
	}
	d := p.next.Sub(now)
	p.next = p.next.Add(p.interval)
	return max(d, 0)
}

// Step performs one operation. Writers may call it at once.
func (g *Stream) Step(ctx context.Context) error {
	g.Stats.Ops.Add(1)
	g.mu.Lock()
	action := g.actions.pick(g.src)
	// Without customers or accounts, the first thing to do is to make them.
	if len(g.custList) == 0 || (len(g.accounts) == 0 && action != ActUpdateCustomer) {
		action = ActNewCustomer
	}
	g.mu.Unlock()
	var err error
	switch action {
	case ActTransaction:
		err = g.transaction(ctx)
	case ActNewCustomer:
		err = g.newCustomer(ctx)
	case ActOpenAccount:
		err = g.openAccount(ctx)
	case ActUpdateCustomer:
		err = g.updateCustomer(ctx)
	case ActCloseAccount:
		err = g.closeAccount(ctx)
	case ActReopenAccount:
		err = g.reopenAccount(ctx)
	case ActRemoveCustomer:
		err = g.removeCustomer(ctx)
	case ActReverse:
		err = g.reverse(ctx)
	}
	switch {
	case errors.Is(err, bank.ErrInsufficientFunds), errors.Is(err, bank.ErrAccountInactive),
		errors.Is(err, bank.ErrNotFound), errors.Is(err, bank.ErrAlreadyReversed),
		errors.Is(err, bank.ErrHasActiveAccounts), errors.Is(err, bank.ErrCustomerClosed),
		errors.Is(err, bank.ErrEmailTaken), errors.Is(err, bank.ErrVersionMismatch):
		// Another writer (the API, or one of ours) changed things since we looked: declined, not
		// failed.
		g.Stats.Declined.Add(1)
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", action, err)
	}
	return nil
}

func (g *Stream) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, g.pool, fn)
}

// locked runs f under g.mu.
func (g *Stream) locked(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f()
}

// pickAccount picks an active account with a heavy head, or -1 when none is active. Under g.mu.
func (g *Stream) pickAccount() int {
	if len(g.accounts) == 0 {
		return -1
	}
	for range 8 {
		i := g.src.skewed(len(g.accounts))
		if g.accounts[i].active {
			return i
		}
	}
	for i := range g.accounts {
		if g.accounts[i].active {
			return i
		}
	}
	return -1
}

// pickCustomer picks an open customer at random (false when there is none). Under g.mu.
func (g *Stream) pickCustomer() (uuid.UUID, bool) {
	if len(g.custList) == 0 {
		return uuid.Nil, false
	}
	return g.custList[g.src.r.IntN(len(g.custList))], true
}

func (g *Stream) transaction(ctx context.Context) error {
	g.mu.Lock()
	i := g.pickAccount()
	if i < 0 {
		g.mu.Unlock()
		return g.newCustomer(ctx)
	}
	a := g.accounts[i]
	kind := bank.TransactionType(g.kinds.pick(g.src))
	p := bank.Posting{AccountID: a.id, Type: kind}
	if kind == bank.Transfer {
		var dst *uuid.UUID
		for range 8 {
			j := g.src.r.IntN(len(g.accounts))
			if j != i && g.accounts[j].active && g.accounts[j].currency == a.currency {
				dst = &g.accounts[j].id
				break
			}
		}
		if dst == nil {
			kind, p.Type = bank.Deposit, bank.Deposit
		} else {
			to := *dst
			p.RelatedAccountID = &to
		}
	}
	cents := g.src.amount(g.cfg.Amounts[string(kind)])
	label := (&ledgerGen{src: g.src}).label(kind)
	cats := categories[kind]
	cat := cats[g.src.r.IntN(len(cats))]
	g.mu.Unlock()
	p.Description, p.Category = &label, &cat
	var id uuid.UUID
	err := g.inTx(ctx, func(tx pgx.Tx) error {
		if kind != bank.Deposit {
			// Spend at most what is there, as a real customer would.
			var bal decimal.Decimal
			if err := tx.QueryRow(ctx, `SELECT balance FROM accounts WHERE account_id = $1`, a.id).Scan(&bal); err != nil {
				return err
			}
			if bal.IsZero() {
				p.Type, p.RelatedAccountID = bank.Deposit, nil
			} else {
				cents = min(cents, bal.Shift(money.Scale).IntPart())
			}
		}
		p.Amount = money.FromCents(cents)
		t, err := bank.Post(ctx, tx, p)
		id = t.ID
		return err
	})
	if err != nil {
		return err
	}
	g.locked(func() { g.remember(id) })
	g.Stats.Transactions.Add(1)
	return nil
}

// remember keeps id among the candidates for reversal. Under g.mu.
func (g *Stream) remember(id uuid.UUID) {
	g.recent = append(g.recent, id)
	if len(g.recent) > 256 {
		g.recent = g.recent[len(g.recent)-256:]
	}
}

// accountDraw is an account to open with its opening deposit, drawn under g.mu.
type accountDraw struct {
	n       bank.NewAccount
	deposit decimal.Decimal
}

func (g *Stream) drawAccount(customer uuid.UUID) accountDraw {
	n := bank.NewAccount{CustomerID: customer, Type: bank.AccountType(g.types.pick(g.src)), Currency: g.currs.pick(g.src)}
	return accountDraw{n: n, deposit: money.FromCents(g.src.amount(g.cfg.Amounts[string(bank.Deposit)]))}
}

// open opens the drawn account with its opening deposit inside tx.
func (d accountDraw) open(ctx context.Context, tx pgx.Tx) (bank.Account, error) {
	a, _, err := bank.OpenWithDeposit(ctx, tx, d.n, d.deposit, nil)
	return a, err
}

// opened notes an account opened. Under g.mu.
func (g *Stream) opened(a bank.Account) {
	g.accounts = append(g.accounts, liveAccount{id: a.ID, customer: a.CustomerID, currency: a.Currency, active: true})
	if _, ok := g.customers[a.CustomerID]; ok {
		g.customers[a.CustomerID]++
	}
	g.Stats.AccountsOpened.Add(1)
	g.Stats.Transactions.Add(1)
}

func (g *Stream) newCustomer(ctx context.Context) error {
	g.mu.Lock()
	g.serial++
	p := g.src.person(g.serial)
	prospect := g.src.r.Float64() < g.cfg.Continuous.ProspectShare && len(g.accounts) > 0
	email := g.uniqueEmail(p)
	var d accountDraw
	if !prospect {
		d = g.drawAccount(uuid.Nil)
	}
	g.mu.Unlock()
	var c bank.Customer
	var a bank.Account
	err := g.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		c, err = bank.CreateCustomer(ctx, tx, uuid.Nil, bank.CustomerFields{FirstName: p.first, LastName: p.last,
			Email: email, AddressLine: &p.street, City: &p.city,
			PostalCode: &p.zip, Country: &p.country})
		if err != nil || prospect {
			return err
		}
		d.n.CustomerID = c.ID
		a, err = d.open(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	g.locked(func() {
		g.customers[c.ID] = 0
		g.custList = append(g.custList, c.ID)
		if !prospect {
			g.opened(a)
		}
	})
	g.Stats.CustomersCreated.Add(1)
	return nil
}

// uniqueEmail prefixes a drawn address with a random tag: the serial alone can repeat after a
// restart (deleted customers lower the count it starts from). A clash that remains only declines
// the one operation. Under g.mu.
func (g *Stream) uniqueEmail(p person) string {
	return fmt.Sprintf("%06x.%s", g.src.r.Uint32()&0xffffff, p.email)
}

// openAccount opens an account with an opening deposit for a customer.
func (g *Stream) openAccount(ctx context.Context) error {
	g.mu.Lock()
	customer, ok := g.pickCustomer()
	var d accountDraw
	if ok {
		d = g.drawAccount(customer)
	}
	g.mu.Unlock()
	if !ok {
		return g.newCustomer(ctx)
	}
	var a bank.Account
	err := g.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		a, err = d.open(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	g.locked(func() { g.opened(a) })
	return nil
}

func (g *Stream) updateCustomer(ctx context.Context) error {
	g.mu.Lock()
	id, ok := g.pickCustomer()
	var p person
	var newEmail string
	if ok {
		g.serial++
		p = g.src.person(g.serial)
		if g.src.r.IntN(2) == 0 {
			newEmail = g.uniqueEmail(p) // moved to a new address
		}
	}
	g.mu.Unlock()
	if !ok {
		return nil
	}
	c, err := bank.GetCustomer(ctx, g.pool, id)
	if err != nil {
		return err
	}
	f := bank.CustomerFields{FirstName: c.FirstName, LastName: c.LastName, Email: c.Email,
		AddressLine: c.AddressLine, City: c.City, PostalCode: c.PostalCode, Country: c.Country}
	if newEmail != "" {
		f.Email = newEmail
	} else {
		f.AddressLine, f.City, f.PostalCode = &p.street, &p.city, &p.zip // moved house
	}
	if _, err := bank.UpdateCustomer(ctx, g.pool, id, f, &c.Version); err != nil {
		return err
	}
	g.Stats.CustomersUpdated.Add(1)
	return nil
}

// closeAccount pays out an account's balance and closes it, in one database transaction.
func (g *Stream) closeAccount(ctx context.Context) error {
	var i int
	var id uuid.UUID
	g.locked(func() {
		if i = g.pickAccount(); i >= 0 {
			id = g.accounts[i].id
		}
	})
	if i < 0 {
		return nil
	}
	err := g.inTx(ctx, func(tx pgx.Tx) error {
		// The row locked before its balance is read: a posting of another writer committed
		// between the read and the close would leave the account closed with money in it (the
		// bank refuses that close).
		if _, err := tx.Exec(ctx, `SELECT FROM accounts WHERE account_id = $1 FOR UPDATE`, id); err != nil {
			return err
		}
		cur, err := bank.GetAccount(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.Balance.IsPositive() {
			label := "Closing payout"
			if _, err := bank.Post(ctx, tx, bank.Posting{AccountID: id, Type: bank.Withdrawal, Amount: cur.Balance, Description: &label}); err != nil {
				return err
			}
			g.Stats.Transactions.Add(1)
		}
		inactive := bank.Inactive
		_, err = bank.UpdateAccount(ctx, tx, id, bank.AccountChange{Status: &inactive}, nil)
		return err
	})
	if err != nil {
		return err
	}
	g.locked(func() { g.accounts[i].active = false })
	g.Stats.AccountsClosed.Add(1)
	return nil
}

func (g *Stream) reopenAccount(ctx context.Context) error {
	i := -1
	var id uuid.UUID
	g.locked(func() {
		for range 8 {
			if j := g.src.r.IntN(len(g.accounts)); !g.accounts[j].active {
				i, id = j, g.accounts[j].id
				return
			}
		}
	})
	if i < 0 {
		return nil
	}
	active := bank.Active
	err := g.inTx(ctx, func(tx pgx.Tx) error {
		_, err := bank.UpdateAccount(ctx, tx, id, bank.AccountChange{Status: &active}, nil)
		return err
	})
	if err != nil {
		return err
	}
	g.locked(func() { g.accounts[i].active = true })
	g.Stats.AccountsReopened.Add(1)
	return nil
}

// removeCustomer takes out a customer with no active account: deleted outright when it never
// held an account (a delete in the change stream), closed otherwise.
func (g *Stream) removeCustomer(ctx context.Context) error {
	var id uuid.UUID
	found := false
	g.locked(func() {
		for range 16 {
			c, ok := g.pickCustomer()
			if ok && !g.hasActiveAccount(c) {
				id, found = c, true
				return
			}
		}
	})
	if !found {
		return nil
	}
	var deleted bool
	err := g.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		deleted, err = bank.RemoveCustomer(ctx, tx, id)
		return err
	})
	if err != nil {
		return err
	}
	g.locked(func() {
		// Found again by id: other writers may have moved it in the list meanwhile.
		if k := slices.Index(g.custList, id); k >= 0 {
			g.custList = slices.Delete(g.custList, k, k+1)
		}
		delete(g.customers, id)
	})
	if deleted {
		g.Stats.CustomersDeleted.Add(1)
	} else {
		g.Stats.CustomersClosed.Add(1)
	}
	return nil
}

// hasActiveAccount says whether customer holds an active account. Under g.mu.
func (g *Stream) hasActiveAccount(customer uuid.UUID) bool {
	if g.customers[customer] == 0 {
		return false
	}
	for _, a := range g.accounts {
		if a.customer == customer && a.active {
			return true
		}
	}
	return false
}

func (g *Stream) reverse(ctx context.Context) error {
	g.mu.Lock()
	if len(g.recent) == 0 {
		g.mu.Unlock()
		return g.transaction(ctx)
	}
	k := g.src.r.IntN(len(g.recent))
	id := g.recent[k]
	g.recent = slices.Delete(g.recent, k, k+1)
	g.mu.Unlock()
	err := g.inTx(ctx, func(tx pgx.Tx) error {
		_, _, err := bank.Reverse(ctx, tx, id, uuid.Nil)
		return err
	})
	if err != nil {
		return err
	}
	g.Stats.Reversals.Add(1)
	return nil
}
