package generator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/money"
)

// Progress hears how far a bulk phase is: done of total rows of phase.
type Progress func(phase string, done, total int)

// BulkResult counts what Bulk inserted and how long the ledger took to write.
type BulkResult struct {
	Customers, Accounts, Transactions int
	// TransactionsElapsed is the time spent generating and copying the transactions.
	TransactionsElapsed time.Duration
	Elapsed             time.Duration
}

// ErrAlreadyLoaded means the data set of this seed is in the database already.
var ErrAlreadyLoaded = errors.New("the data set of this seed is already loaded")

// bulkAccount is the simulation state of one account while the ledger is generated: the row as
// bank.Decide sees it, and when it opened.
type bulkAccount struct {
	bank.Account
	opened time.Time
}

// Bulk inserts exactly cfg.Customers customers, cfg.Accounts accounts and cfg.Transactions
// transactions through COPY, in one database transaction, so the whole data set becomes visible
// (and reaches the change stream) at once. Balances are simulated in time order, each posting
// allowed and applied by bank.Decide (the rules bank.Post books by), so each account's balance is
// the sum of its postings and no row is one the bank would refuse. The same seed gives the same
// rows, ids and timestamps.
func Bulk(ctx context.Context, pool *pgxpool.Pool, cfg Config, progress Progress) (BulkResult, error) {
	if progress == nil {
		progress = func(string, int, int) {}
	}
	start := time.Now()
	b := newBulkRun(cfg, progress)
	if err := b.checkNotLoaded(ctx, pool); err != nil {
		return BulkResult{}, err
	}
	var res BulkResult
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return b.load(ctx, tx, &res) }); err != nil {
		return BulkResult{}, fmt.Errorf("bulk: %w", err)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// bulkRun carries one Bulk load from phase to phase. The phases draw from src in a fixed order
// (customer ids, customers, accounts, ledger), which is what makes a seed give the same rows.
type bulkRun struct {
	cfg      Config
	src      *source
	progress Progress
	window   time.Duration
	opening  time.Duration // customers and accounts appear in the first third of the window

	customerIDs   []uuid.UUID
	customerSince []time.Time
	accounts      []bulkAccount
	byCurrency    map[string][]int
}

func newBulkRun(cfg Config, progress Progress) *bulkRun {
	window := time.Duration(cfg.History.Days) * 24 * time.Hour
	b := &bulkRun{cfg: cfg, src: newSource(cfg.Seed, 1), progress: progress, window: window, opening: window / 3,
		customerIDs: make([]uuid.UUID, cfg.Customers), customerSince: make([]time.Time, cfg.Customers)}
	// Each customer's creation time is drawn with its id, a UUIDv7 of that time.
	for i := range b.customerIDs {
		b.customerSince[i] = cfg.History.Start.Add(time.Duration(b.src.r.Int64N(int64(b.opening))))
		b.customerIDs[i] = b.src.uuidAt(b.customerSince[i])
	}
	return b
}

// checkNotLoaded refuses a seed whose first customer is in the database already.
func (b *bulkRun) checkNotLoaded(ctx context.Context, pool *pgxpool.Pool) error {
	if len(b.customerIDs) == 0 {
		return nil
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM customers WHERE customer_id = $1)", b.customerIDs[0]).Scan(&exists); err != nil {
		return fmt.Errorf("bulk: check for an earlier load: %w", err)
	}
	if exists {
		return fmt.Errorf("bulk: seed %d: %w (choose another seed)", b.cfg.Seed, ErrAlreadyLoaded)
	}
	return nil
}

// load writes the phases in order inside tx, counting into res.
func (b *bulkRun) load(ctx context.Context, tx pgx.Tx, res *BulkResult) error {
	var err error
	if res.Customers, err = b.copyCustomers(ctx, tx); err != nil {
		return err
	}
	if res.Accounts, err = b.copyAccounts(ctx, tx); err != nil {
		return err
	}
	txStart := time.Now()
	if res.Transactions, err = b.copyTransactions(ctx, tx); err != nil {
		return err
	}
	res.TransactionsElapsed = time.Since(txStart)
	return b.setBalances(ctx, tx)
}

// copyRows COPYs total rows into table, row(i) making the i-th, and reports the table's progress
// every so many rows and at the end.
func (b *bulkRun) copyRows(ctx context.Context, tx pgx.Tx, table string, cols []string, total, every int,
	row func(i int) ([]any, error)) (int, error) {
	i := 0
	n, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		if i == total {
			return nil, nil
		}
		r, err := row(i)
		if err != nil {
			return nil, err
		}
		i++
		if i%every == 0 {
			b.progress(table, i, total)
		}
		return r, nil
	}))
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", table, err)
	}
	b.progress(table, int(n), total)
	return int(n), nil
}

func (b *bulkRun) copyCustomers(ctx context.Context, tx pgx.Tx) (int, error) {
	return b.copyRows(ctx, tx, "customers",
		[]string{"customer_id", "first_name", "last_name", "email", "address_line", "city", "postal_code", "country", "created_at", "updated_at"},
		len(b.customerIDs), 10000, func(i int) ([]any, error) {
			p := b.src.person(int64(i))
			at := b.customerSince[i]
			return []any{b.customerIDs[i], p.first, p.last, p.email, p.street, p.city, p.zip, p.country, at, at}, nil
		})
}

// copyAccounts writes the accounts with zero balances; setBalances sets them from the simulated
// ledger.
func (b *bulkRun) copyAccounts(ctx context.Context, tx pgx.Tx) (int, error) {
	types, currencies := newWeighted(b.cfg.AccountTypes), newWeighted(b.cfg.Currencies)
	b.accounts = make([]bulkAccount, b.cfg.Accounts)
	b.byCurrency = map[string][]int{}
	return b.copyRows(ctx, tx, "accounts",
		[]string{"account_id", "customer_id", "account_type", "currency", "created_at", "updated_at"},
		len(b.accounts), 10000, func(i int) ([]any, error) {
			c := b.src.r.IntN(len(b.customerIDs))
			at := b.customerSince[c].Add(time.Duration(b.src.r.Int64N(int64(24 * time.Hour))))
			a := bulkAccount{Account: bank.Account{ID: b.src.uuidAt(at), Currency: currencies.pick(b.src), Status: bank.Active}, opened: at}
			b.accounts[i] = a
			b.byCurrency[a.Currency] = append(b.byCurrency[a.Currency], i)
			return []any{a.ID, b.customerIDs[c], types.pick(b.src), a.Currency, at, at}, nil
		})
}

// copyTransactions writes the ledger: first an opening deposit per account, then activity in
// time order.
func (b *bulkRun) copyTransactions(ctx context.Context, tx pgx.Tx) (int, error) {
	led := ledgerGen{cfg: b.cfg, src: b.src, accounts: b.accounts, byCurrency: b.byCurrency,
		kinds: newWeighted(b.cfg.TransactionTypes),
		from:  b.cfg.History.Start.Add(b.opening + 24*time.Hour), to: b.cfg.History.Start.Add(b.window)}
	return b.copyRows(ctx, tx, "transactions",
		[]string{"transaction_id", "account_id", "transaction_type", "amount", "currency",
			"related_account_id", "description", "category", "created_at", "updated_at"},
		b.cfg.Transactions, 50000, led.next)
}

// setBalances writes each non-zero simulated balance onto its account.
func (b *bulkRun) setBalances(ctx context.Context, tx pgx.Tx) error {
	ids := make([]uuid.UUID, 0, len(b.accounts))
	balances := make([]decimal.Decimal, 0, len(b.accounts))
	for _, a := range b.accounts {
		if !a.Balance.IsZero() {
			ids = append(ids, a.ID)
			balances = append(balances, a.Balance)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE accounts a SET balance = b.balance
		FROM unnest($1::uuid[], $2::numeric[]) AS b(account_id, balance)
		WHERE a.account_id = b.account_id`, ids, balances); err != nil {
		return fmt.Errorf("set balances: %w", err)
	}
	return nil
}

// ledgerGen draws the ledger rows one by one, keeping every balance.
type ledgerGen struct {
	cfg        Config
	src        *source
	accounts   []bulkAccount
	byCurrency map[string][]int
	kinds      weighted
	from, to   time.Time
}

var (
	depositLabels    = []string{"Salary", "Cash deposit", "Refund", "Interest", "Cheque deposit"}
	withdrawalLabels = []string{"ATM withdrawal", "Card payment", "Utility bill", "Rent", "Groceries"}
	transferLabels   = []string{"Savings", "Rent share", "Gift", "Invoice", "Loan repayment"}
	categories       = map[bank.TransactionType][]string{
		bank.Deposit:    {"income", "cash", "refund", "interest", "cheque"},
		bank.Withdrawal: {"cash", "shopping", "utilities", "housing", "groceries"},
		bank.Transfer:   {"savings", "housing", "gifts", "business", "loans"},
	}
)

// next returns row i. Rows below len(accounts) are opening deposits, the rest spread evenly (with
// jitter) over the activity window, so timestamps rise with i and balances are simulated in order.
// The generator chooses like a customer (spend at most what is there); bank.Decide rules on the
// choice and moves the balances. A refusal is a fault of the generator: it stops the load.
func (g *ledgerGen) next(i int) ([]any, error) {
	s := g.src
	var (
		acct int
		kind = bank.Deposit
		at   time.Time
	)
	if i < len(g.accounts) {
		acct = i
		at = g.accounts[i].opened.Add(time.Minute)
	} else {
		k := i - len(g.accounts)
		span := g.to.Sub(g.from)
		total := g.cfg.Transactions - len(g.accounts)
		at = g.from.Add(time.Duration((float64(k) + s.r.Float64()) / float64(total) * float64(span)))
		acct = s.skewed(len(g.accounts))
		kind = bank.TransactionType(g.kinds.pick(s))
	}
	a := &g.accounts[acct]
	amount := money.FromCents(s.amount(g.cfg.Amounts[string(kind)]))
	dst := -1
	if kind == bank.Transfer {
		if peers := g.byCurrency[a.Currency]; len(peers) >= 2 {
			dst = peers[s.r.IntN(len(peers))]
			if dst == acct {
				dst = peers[(slices.Index(peers, dst)+1)%len(peers)]
			}
		}
	}
	switch {
	case kind != bank.Deposit && (a.Balance.IsZero() || kind == bank.Transfer && dst < 0):
		// Nothing to spend, or no one to send it to: money comes in instead.
		kind, amount = bank.Deposit, money.FromCents(s.amount(g.cfg.Amounts[string(bank.Deposit)]))
	case kind != bank.Deposit && a.Balance.LessThan(amount):
		amount = a.Balance
	}
	p := bank.Posting{ID: s.uuidAt(at), AccountID: a.ID, Type: kind, Amount: amount}
	var to bank.Account
	if kind == bank.Transfer {
		to = g.accounts[dst].Account
		p.RelatedAccountID = &g.accounts[dst].ID
	}
	after, err := bank.Decide(p, a.Account, to)
	if err != nil {
		return nil, fmt.Errorf("ledger row %d: the generator chose a posting the bank refuses: %w", i, err)
	}
	a.Balance = after.From
	var related any
	if kind == bank.Transfer {
		g.accounts[dst].Balance = after.To
		related = g.accounts[dst].ID
	}
	label, cats := g.label(kind), categories[kind]
	return []any{p.ID, a.ID, string(kind), amount, a.Currency, related,
		label, cats[s.r.IntN(len(cats))], at, at}, nil
}

func (g *ledgerGen) label(kind bank.TransactionType) string {
	switch kind {
	case bank.Withdrawal:
		return withdrawalLabels[g.src.r.IntN(len(withdrawalLabels))]
	case bank.Transfer:
		return transferLabels[g.src.r.IntN(len(transferLabels))]
	}
	return depositLabels[g.src.r.IntN(len(depositLabels))]
}
