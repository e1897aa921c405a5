package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// runBenchCut is issue 16's test of gold as a consistent cut: paced transfers into a running
// stack while a watcher checks gold after every dbt build: every account's current balance in
// gold.dim_accounts must equal the sum of its postings in gold.fct_postings and its last closing
// balance in gold.fct_daily_account_balances, and gold.cut must move forward. A torn build (a transfer's ledger row without its balance updates, or the
// reverse) shows as an account whose balance and postings differ.
func runBenchCut(ctx context.Context, args []string) error {
	f, err := parseCutFlags(args)
	if err != nil {
		return err
	}
	token, sqlURL, pool, err := runningStack(ctx, f.consoleURL, f.conns+2)
	if err != nil {
		return err
	}
	defer pool.Close()
	tag := "bench-cut-" + uuid.NewString()[:8]
	fmt.Printf("gold cut test (%s): %.0f transfers/s for %d s on %d connections over %d accounts\n", tag, f.rate, f.seconds, f.conns, f.accounts)
	ids, err := openBenchAccounts(ctx, pool, tag, f.accounts)
	if err != nil {
		return err
	}
	d := &postingDriver{pool: pool, accounts: ids, tag: tag}
	w := &cutWatcher{sqlURL: sqlURL, consoleURL: f.consoleURL, token: token, tag: tag, withCut: f.requireCut}
	wctx, stopWatching := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.watch(wctx, f.poll) }()

	// The postings due are committed even when late; on a machine too slow for the rate, the load
	// stops 15 s after its time instead (an interrupted posting counts as failed).
	dur := time.Duration(f.seconds) * time.Second
	lctx, stopLoad := context.WithTimeout(ctx, dur+15*time.Second)
	res := d.run(lctx, f.rate, dur, f.conns)
	stopLoad()
	fmt.Printf("  load: %d committed in %.1f s = %.1f tx/s (asked %.0f), %d failed, start delay behind schedule p95 %v\n",
		res.committed, res.elapsed.Seconds(), res.tps(), f.rate, res.failed, res.lateP95.Round(time.Millisecond))
	// The builds after the load are checked too, until gold holds every transfer committed. On a
	// slow machine one build can take the whole load: a trickle of transfers then goes on (builds
	// follow loads) until the fewest builds asked for have been checked.
	settle, committed := time.Now(), res.committed
	for ctx.Err() == nil && time.Since(settle) < f.settle && (w.builds() < f.builds || w.lastTransfers() < committed) {
		if w.builds() >= f.builds {
			time.Sleep(f.poll)
			continue
		}
		tctx, stopTrickle := context.WithTimeout(ctx, 10*time.Second)
		committed = d.run(tctx, trickleRate, 5*time.Second, 2).committed // the driver counts all its runs
		stopTrickle()
	}
	if committed > res.committed {
		fmt.Printf("  trickle after the load: %d more transfers at %.0f/s until %d builds were checked\n", committed-res.committed, trickleRate, f.builds)
	}
	stopWatching()
	<-done
	runs, err := dbtRuns(ctx, f.consoleURL, token)
	if err != nil {
		fmt.Printf("  (the console's dbt runs could not be read: %v)\n", err)
	}
	return w.verdict(f, runs, committed)
}

// trickleRate is the pace of the transfers that go on after the load until enough builds have
// been checked.
const trickleRate = 20.0

// cutFlags are finbench cut's flags.
type cutFlags struct {
	rate                             float64
	seconds, conns, accounts, builds int
	poll, settle                     time.Duration
	consoleURL                       string
	requireCut                       bool
}

func parseCutFlags(args []string) (cutFlags, error) {
	fs := newFlags("cut")
	rate := fs.Float64("rate", targetTPS, "transfers per second to commit")
	seconds := fs.Int("seconds", 75, "how long to sustain the rate")
	conns := fs.Int("conns", 48, "Postgres connections (one goroutine each)")
	accounts := fs.Int("accounts", 400, "accounts the transfers spread over")
	builds := fs.Int("min-builds", 3, "fewest dbt builds that must be checked")
	poll := fs.Duration("poll", 250*time.Millisecond, "interval between checks of gold")
	settle := fs.Duration("settle", 3*time.Minute, "how long to wait after the load for gold to hold every transfer")
	consoleURL := fs.String("console", cmp.Or(os.Getenv("FIN_CONSOLE_URL"), "http://127.0.0.1:8080"), "the running stack's console (env FIN_CONSOLE_URL)")
	requireCut := fs.Bool("require-cut", true, "gold.cut must exist and move forward (false: check balances only, e.g. on models without a cut)")
	if err := parseFlags(fs, args); err != nil {
		return cutFlags{}, err
	}
	return cutFlags{rate: *rate, seconds: *seconds, conns: *conns, accounts: *accounts, builds: *builds,
		poll: *poll, settle: *settle, consoleURL: *consoleURL, requireCut: *requireCut}, nil
}

// goldCheck is gold as one query saw it: between two builds, since queries wait while dbt holds
// the models file.
type goldCheck struct {
	at                time.Time
	lsn               int64     // gold.cut.lsn; 0 without a cut
	commitTS, builtAt time.Time // gold.cut's; without a cut, builtAt is the newest posting's load

	accounts, differing int
	transfers           int    // this run's transfers gold.fct_transactions holds
	sample              string // a few differing accounts: id balance/postings/last daily closing
}

// build names the build a check saw.
func (c goldCheck) build() string { return c.builtAt.Format(time.RFC3339Nano) }

// cutWatcher checks gold over and over and keeps one check per build.
type cutWatcher struct {
	sqlURL, consoleURL, token, tag string
	withCut                        bool

	mu      sync.Mutex
	checks  []goldCheck // the first check of each build, in order
	seen    map[string]bool
	errs    int
	lastErr error
}

func (w *cutWatcher) watch(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		c, err := w.check(ctx)
		w.mu.Lock()
		switch {
		case err != nil && ctx.Err() == nil:
			w.errs, w.lastErr = w.errs+1, err
		case err == nil && !w.seen[c.build()]:
			if w.seen == nil {
				w.seen = map[string]bool{}
			}
			w.seen[c.build()] = true
			w.checks = append(w.checks, c)
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

// builds is how many builds have been checked.
func (w *cutWatcher) builds() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.checks)
}

// lastTransfers is how many of the run's transfers the last build checked holds.
func (w *cutWatcher) lastTransfers() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.checks) == 0 {
		return 0
	}
	return w.checks[len(w.checks)-1].transfers
}

// balancesQuery compares, in one statement (one snapshot of gold), every account's current
// balance with the sum of its postings and with its last closing balance in
// gold.fct_daily_account_balances (which follows the cut too); an account on one side only
// differs too.
const balancesQuery = `WITH cur AS (
		SELECT account_id, balance FROM gold.dim_accounts WHERE is_current AND NOT is_deleted),
	posted AS (SELECT account_id, sum(amount) AS total FROM gold.fct_postings GROUP BY account_id),
	daily AS (SELECT account_id, closing_balance FROM gold.fct_daily_account_balances
		QUALIFY balance_date = max(balance_date) OVER (PARTITION BY account_id)),
	cmp AS (SELECT coalesce(cur.account_id, posted.account_id, daily.account_id) AS account_id,
			coalesce(cur.balance, 0) AS balance, coalesce(posted.total, 0) AS total,
			coalesce(daily.closing_balance, 0) AS closing
		FROM cur FULL OUTER JOIN posted ON cur.account_id = posted.account_id
		FULL OUTER JOIN daily ON coalesce(cur.account_id, posted.account_id) = daily.account_id),
	bad AS (SELECT * FROM cmp WHERE balance <> total OR balance <> closing)
	SELECT %s, (SELECT count(*) FROM cmp), (SELECT count(*) FROM bad),
		(SELECT count(*) FROM gold.fct_transactions WHERE description = '%s'),
		(SELECT coalesce(string_agg(account_id || ' ' || cast(balance AS varchar) || '/' || cast(total AS varchar)
			|| '/' || cast(closing AS varchar), '; '), '')
			FROM (SELECT * FROM bad ORDER BY account_id LIMIT 3))
	%s`

func (w *cutWatcher) check(ctx context.Context) (goldCheck, error) {
	// Without a cut, the build is the console's last run before the check (a build ending between
	// the two is checked again under its own name on the next poll).
	var last time.Time
	if !w.withCut {
		runs, err := dbtRuns(ctx, w.consoleURL, w.token)
		if err != nil || len(runs) == 0 {
			return goldCheck{}, fmt.Errorf("no dbt run yet (%v)", err)
		}
		last = runs[0].At
	}
	q := fmt.Sprintf(balancesQuery, "0, 0, 0", w.tag, "")
	if w.withCut {
		q = fmt.Sprintf(balancesQuery, "c.lsn, epoch_us(c.commit_ts), epoch_us(c.built_at)", w.tag, "FROM gold.cut c")
	}
	var buf bytes.Buffer
	if err := duckdb.PostQuery(ctx, w.sqlURL, w.token, q, &buf); err != nil {
		return goldCheck{}, err
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		return goldCheck{}, fmt.Errorf("read the check's answer: %w", err)
	}
	if len(rows) != 2 || len(rows[1]) != 7 {
		// gold.cut holds one row once a build has published a cut.
		return goldCheck{}, fmt.Errorf("the check answered %d rows, want a header and one row (is gold.cut empty?)", len(rows))
	}
	r := rows[1]
	n := make([]int64, 6)
	for i := range n {
		if n[i], err = strconv.ParseInt(r[i], 10, 64); err != nil {
			return goldCheck{}, fmt.Errorf("the check's column %d %q: %w", i+1, r[i], err)
		}
	}
	c := goldCheck{at: time.Now(), lsn: n[0], accounts: int(n[3]), differing: int(n[4]), transfers: int(n[5]), sample: r[6]}
	c.commitTS, c.builtAt = time.UnixMicro(n[1]).UTC(), time.UnixMicro(n[2]).UTC()
	if !w.withCut {
		c.builtAt = last
	}
	return c, nil
}

// verdict prints every build checked and fails on a torn build, a cut that went back or stood
// still while gold took more transfers, gold not holding every committed transfer at the end, or
// too few builds.
func (w *cutWatcher) verdict(f cutFlags, runs []console.DbtRun, committed int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var problems []string
	torn := 0
	for i, c := range w.checks {
		line := fmt.Sprintf("  build %d (checked %s): %d of %d transfers; %d accounts, %d differ", i+1,
			c.at.Format("15:04:05.000"), c.transfers, committed, c.accounts, c.differing)
		if w.withCut {
			line += fmt.Sprintf("; cut lsn %d, commit %s, built %s", c.lsn, c.commitTS.Format("15:04:05.000"), c.builtAt.Format("15:04:05.000"))
			if p := cutMoved(w.checks, i); p != "" {
				problems = append(problems, p)
			}
		}
		if c.differing > 0 {
			torn++
			line += " (e.g. " + c.sample + ")"
		}
		fmt.Println(line)
	}
	fmt.Printf("  %d builds checked, %d with accounts whose balance differs from their postings; %d dbt runs in the console's list; %d checks failed to run",
		len(w.checks), torn, len(runs), w.errs)
	if w.lastErr != nil {
		fmt.Printf(" (last: %v)", w.lastErr)
	}
	fmt.Println()
	if torn > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d builds left balances in gold.dim_accounts that differ from the sums of gold.fct_postings", torn, len(w.checks)))
	}
	if len(w.checks) < f.builds {
		problems = append(problems, fmt.Sprintf("only %d builds checked, want at least %d", len(w.checks), f.builds))
	}
	if n := len(w.checks); n == 0 || w.checks[n-1].transfers < committed {
		problems = append(problems, fmt.Sprintf("gold never held every transfer committed (%d) within %v after the load", committed, f.settle))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// cutMoved says what is wrong with check i's cut beside the previous build's: it went back, or
// stood still while gold took more transfers (which only a cut that moved can admit).
func cutMoved(checks []goldCheck, i int) string {
	if i == 0 {
		return ""
	}
	prev, c := checks[i-1], checks[i]
	switch {
	case c.lsn < prev.lsn:
		return fmt.Sprintf("gold.cut went back from lsn %d to %d", prev.lsn, c.lsn)
	case c.lsn == prev.lsn && c.transfers > prev.transfers:
		return fmt.Sprintf("gold took %d more transfers while gold.cut stood at lsn %d", c.transfers-prev.transfers, c.lsn)
	}
	return ""
}
