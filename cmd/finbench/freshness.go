package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/localpg"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// Targets and references of issue 7 and the team's anchors, printed beside the figures.
const (
	targetRawP95  = 2 * time.Second
	targetTPS     = 500.0
	targetGoldP50 = 5 * time.Second // issue 16: gold built as loads commit
	targetGoldP95 = 10 * time.Second
)

// runBenchFreshness drives paced postings (one bank.Post per database transaction) into the
// database of a running stack (`fin up`), and watches raw.transactions and gold.fct_transactions
// through the stack's /sql endpoint to time each posting from its Postgres commit (the commit
// timestamp the capture reads from the WAL) to the moment a query first returns it.
func runBenchFreshness(ctx context.Context, args []string) error {
	f, err := parseFreshnessFlags(args)
	if err != nil {
		return err
	}
	b, err := setUpFreshness(ctx, f)
	if err != nil {
		return err
	}
	defer b.pool.Close()
	ref, err := b.reference(ctx)
	if err != nil {
		return err
	}
	return b.timed(ctx, ref)
}

// freshnessFlags are finbench freshness's flags.
type freshnessFlags struct {
	rate                            float64
	seconds, conns, accounts, burst int
	poll, goldWait                  time.Duration
	consoleURL                      string
	// scheduleOnly says the stack builds gold on its schedule only (FIN_DBT_BUILD_ON_LOAD=false):
	// its gold figure is the reference, not held to the targets.
	scheduleOnly bool
}

func parseFreshnessFlags(args []string) (freshnessFlags, error) {
	fs := newFlags("freshness")
	rate := fs.Float64("rate", targetTPS, "postings per second to commit")
	seconds := fs.Int("seconds", 120, "how long to sustain the rate")
	conns := fs.Int("conns", 48, "Postgres connections (one goroutine each)")
	accounts := fs.Int("accounts", 1000, "accounts the postings spread over (fewer means more row-lock waits)")
	burst := fs.Int("reference-seconds", 10, "seconds of unpaced postings first: the rate this machine reaches right now")
	poll := fs.Duration("poll", 100*time.Millisecond, "interval between queries of raw.transactions")
	goldWait := fs.Duration("gold-wait", 5*time.Minute, "how long to wait for every posting in gold after the run")
	consoleURL := fs.String("console", cmp.Or(os.Getenv("FIN_CONSOLE_URL"), "http://127.0.0.1:8080"), "the running stack's console (env FIN_CONSOLE_URL)")
	scheduleOnly := fs.Bool("schedule-only", false, "the stack builds gold on its schedule only: report gold as the reference")
	if err := parseFlags(fs, args); err != nil {
		return freshnessFlags{}, err
	}
	return freshnessFlags{rate: *rate, seconds: *seconds, conns: *conns, accounts: *accounts, burst: *burst,
		poll: *poll, goldWait: *goldWait, consoleURL: *consoleURL, scheduleOnly: *scheduleOnly}, nil
}

// freshnessBench is one freshness run against a running stack: its postings are tagged, and the
// pollers see them in raw and gold through the console's /sql.
type freshnessBench struct {
	freshnessFlags
	token, sqlURL, tag string
	pool               *pgxpool.Pool
	d                  *postingDriver
	raw, gold          *seenSet
	runs               *runSet
}

// runningStack reaches a running `fin up`: its SQL token, its /sql URL under consoleURL, and a
// pool of conns connections to its migrated Postgres.
func runningStack(ctx context.Context, consoleURL string, conns int) (token, sqlURL string, pool *pgxpool.Pool, err error) {
	token, err = duckdb.ReadToken(duckdb.TokenPath(duckdb.DefaultPath()))
	if err != nil {
		return "", "", nil, fmt.Errorf("the running stack's SQL token (is `fin up` running with this WAREHOUSE_PATH/FIN_STATE_DIR?): %w", err)
	}
	if pool, err = database.Open(ctx, localpg.URL(), conns); err != nil {
		return "", "", nil, err
	}
	if _, err := database.Migrate(ctx, pool); err != nil {
		pool.Close()
		return "", "", nil, err
	}
	return token, strings.TrimRight(consoleURL, "/") + "/sql", pool, nil
}

// setUpFreshness reaches the running stack and opens the accounts the postings go to.
func setUpFreshness(ctx context.Context, f freshnessFlags) (*freshnessBench, error) {
	b := &freshnessBench{freshnessFlags: f, tag: "bench-freshness-" + uuid.NewString()[:8], raw: newSeenSet(), gold: newSeenSet(), runs: newRunSet()}
	var err error
	if b.token, b.sqlURL, b.pool, err = runningStack(ctx, f.consoleURL, f.conns+2); err != nil {
		return nil, err
	}
	fmt.Printf("freshness benchmark (%s): %.0f postings/s for %d s on %d connections over %d accounts\n", b.tag, f.rate, f.seconds, f.conns, f.accounts)
	ids, err := openBenchAccounts(ctx, b.pool, b.tag, f.accounts)
	if err != nil {
		b.pool.Close()
		return nil, err
	}
	b.d = &postingDriver{pool: b.pool, accounts: ids, tag: b.tag}
	return b, nil
}

// reference runs the same postings unpaced, measured now with the stack running beside them, and
// lets their changes drain through the stack before the timed run starts.
func (b *freshnessBench) reference(ctx context.Context) (runResult, error) {
	ref := b.d.run(ctx, 0, time.Duration(b.burst)*time.Second, b.conns)
	fmt.Printf("  reference, unpaced postings for %d s: %d committed = %.0f tx/s\n", b.burst, ref.committed, ref.tps())
	drain := time.Now()
	if err := waitSeen(ctx, b.raw, b.d.committedIDs(), func(ctx context.Context) error {
		return pollRaw(ctx, b.sqlURL, b.token, b.tag, b.raw)
	}, b.poll, 5*time.Minute); err != nil {
		return ref, fmt.Errorf("the reference burst did not reach raw.transactions: %w", err)
	}
	fmt.Printf("  the burst's %d postings were all in raw.transactions %.1f s after it ended\n", ref.committed, time.Since(drain).Seconds())
	b.d.reset()
	return ref, nil
}

// timed runs the paced postings watched by the pollers, waits for them in raw and gold, and
// reports.
func (b *freshnessBench) timed(ctx context.Context, ref runResult) error {
	pctx, stopPolling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var rawErrs, goldErrs atomic.Int64
	watch := func(every time.Duration, errs *atomic.Int64, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pctx.Err() == nil {
				if err := fn(pctx); err != nil && pctx.Err() == nil {
					errs.Add(1)
				}
				select {
				case <-pctx.Done():
				case <-time.After(every):
				}
			}
		}()
	}
	watch(b.poll, &rawErrs, func(ctx context.Context) error { return pollRaw(ctx, b.sqlURL, b.token, b.tag, b.raw) })
	watch(time.Second, &goldErrs, func(ctx context.Context) error { return pollGold(ctx, b.sqlURL, b.token, b.tag, b.gold) })
	var runErrs atomic.Int64 // a missed status poll loses nothing the next one's last 20 hold
	watch(2*time.Second, &runErrs, func(ctx context.Context) error { return b.runs.poll(ctx, b.consoleURL, b.token) })
	start := time.Now()
	res := b.d.run(ctx, b.rate, time.Duration(b.seconds)*time.Second, b.conns)
	fmt.Printf("  paced run: %d committed in %.1f s = %.1f tx/s (target %.0f, ratio %.2f; reference %.0f tx/s unpaced), %d failed, start delay behind schedule p95 %v\n",
		res.committed, res.elapsed.Seconds(), res.tps(), b.rate, res.tps()/b.rate, ref.tps(), res.failed, res.lateP95.Round(time.Millisecond))

	committed := b.d.committedIDs()
	rawWait := waitSeen(ctx, b.raw, committed, nil, b.poll, 3*time.Minute)
	goldWaitErr := waitSeen(ctx, b.gold, committed, nil, time.Second, b.goldWait)
	stopPolling()
	wg.Wait()

	missingRaw, missingGold := b.report(ctx, res, committed, start)
	if n := rawErrs.Load() + goldErrs.Load(); n > 0 {
		fmt.Printf("  polls that failed: raw %d, gold %d (gold fails until the first dbt run builds it)\n", rawErrs.Load(), goldErrs.Load())
	}
	if missingRaw > 0 || rawWait != nil {
		return fmt.Errorf("%d committed postings never reached raw.transactions: %v", missingRaw, rawWait)
	}
	if missingGold > 0 || goldWaitErr != nil {
		return fmt.Errorf("%d committed postings never reached gold.fct_transactions: %v", missingGold, goldWaitErr)
	}
	return nil
}

// report prints the latencies of the committed postings, in all and split by dbt runs, and
// returns how many never reached raw and gold.
func (b *freshnessBench) report(ctx context.Context, res runResult, committed []uuid.UUID, start time.Time) (missingRaw, missingGold int) {
	// The console refreshes its status every few seconds: wait for the run that built the last
	// gold rows to show, so the split by dbt runs below knows every run.
	var runs []console.DbtRun
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		err = b.runs.poll(ctx, b.consoleURL, b.token)
		runs = b.runs.all()
		if err == nil && len(runs) > 0 && !runs[0].At.Before(b.gold.newestSighting().Add(-2*time.Second)) {
			break
		}
	}
	rawLat, loadLat, missingRaw := b.raw.latencies(committed, nil)
	quietLat, _, _ := b.raw.latencies(committed, duringDbt(runs))
	goldLat, _, missingGold := b.gold.latencies(committed, nil)
	rs, ls, gs := summarize(rawLat), summarize(loadLat), summarize(goldLat)
	verdict := "met"
	if rs.p95 > targetRawP95 || res.tps() < 0.95*b.rate {
		verdict = "NOT met"
	}
	fmt.Printf("  commit -> queryable in raw.transactions (first /sql answer holding it, polled every %v): %s over %d postings; target p95 <= %v at %.0f tx/s: %s (p95/target %.2f)\n",
		b.poll, rs, len(rawLat), targetRawP95, b.rate, verdict, rs.p95.Seconds()/targetRawP95.Seconds())
	fmt.Printf("  commit -> _loaded_at (start of the load transaction): %s\n", ls)
	fmt.Printf("  commit -> queryable, the %d postings whose wait overlapped no dbt run: %s (p95/target %.2f)\n",
		len(quietLat), summarize(quietLat), summarize(quietLat).p95.Seconds()/targetRawP95.Seconds())
	fmt.Printf("  references: Snowpipe Streaming 5-10 s to queryable; Snowpipe (files) \"within minutes\"; the original Airflow COPY every minute (30 s mean)\n")
	b.reportGold(gs, len(goldLat), runs, start)
	if !b.scheduleOnly {
		decomposeGold(b.raw, b.gold, committed, runs).print()
		if err := b.printWholeInRaw(ctx, committed, runs); err != nil {
			fmt.Printf("    commit -> whole in RAW: %v\n", err)
		}
		if err := b.printCutLag(ctx, runs, start); err != nil {
			fmt.Printf("    the cut build by build: %v\n", err)
		}
	}
	return missingRaw, missingGold
}

// reportGold prints commit -> gold, against the targets when builds follow loads, and the dbt
// runs gathered from the console's status during the run.
func (b *freshnessBench) reportGold(gs latencySummary, n int, runs []console.DbtRun, start time.Time) {
	what := "commit -> queryable in gold (gold.fct_transactions and its account's current gold.dim_accounts row; polled every 1 s)"
	if b.scheduleOnly {
		fmt.Printf("  %s, schedule only (the reference): %s over %d postings\n", what, gs, n)
	} else {
		verdict := "met"
		if gs.p50 > targetGoldP50 || gs.p95 > targetGoldP95 {
			verdict = "NOT met"
		}
		fmt.Printf("  %s, builds following loads: %s over %d postings; target p50 <= %v, p95 <= %v: %s (p95/target %.2f)\n",
			what, gs, n, targetGoldP50, targetGoldP95, verdict, gs.p95.Seconds()/targetGoldP95.Seconds())
	}
	var secs []time.Duration
	var failures []string
	models := map[int]int{}
	for _, r := range runs {
		if r.At.After(start) {
			models[r.Models]++
			secs = append(secs, time.Duration(r.Seconds*float64(time.Second)))
			if !r.OK {
				failures = append(failures, fmt.Sprintf("%.300s", strings.Join(r.Failures, "; ")))
			}
		}
	}
	failed := len(failures)
	defer func() {
		for _, f := range failures {
			fmt.Printf("    failed build: %s\n", f)
		}
	}()
	fmt.Printf("    dbt builds after the paced run started: %d (%d failed), wall %s, builds by models built %v; loads go on into RAW meanwhile (dbt reads a snapshot of it)\n",
		len(secs), failed, summarize(secs), models)
}

// openBenchAccounts opens n EUR accounts, five per customer, each funded so withdrawals and
// transfers of a few euros never run out.
func openBenchAccounts(ctx context.Context, pool *pgxpool.Pool, tag string, n int) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, 0, n)
	fund := decimal.RequireFromString("1000000.00")
	desc := tag + "-funding"
	for len(ids) < n {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			c, err := bank.CreateCustomer(ctx, tx, uuid.Nil, bank.CustomerFields{FirstName: "Bench", LastName: "Freshness",
				Email: fmt.Sprintf("%s-%d@example.com", tag, len(ids))})
			if err != nil {
				return err
			}
			for range min(5, n-len(ids)) {
				a, _, err := bank.OpenWithDeposit(ctx, tx, bank.NewAccount{CustomerID: c.ID, Type: bank.Checking, Currency: "EUR"}, fund, &desc)
				if err != nil {
					return err
				}
				ids = append(ids, a.ID)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("open benchmark accounts: %w", err)
		}
	}
	return ids, nil
}

// postingDriver commits postings tagged with tag and remembers each committed one.
type postingDriver struct {
	pool     *pgxpool.Pool
	accounts []uuid.UUID
	tag      string

	mu        sync.Mutex
	committed []uuid.UUID
}

type runResult struct {
	committed, failed int
	elapsed           time.Duration
	lateP95           time.Duration
}

func (r runResult) tps() float64 { return float64(r.committed) / r.elapsed.Seconds() }

func (d *postingDriver) reset() {
	d.mu.Lock()
	d.committed = nil
	d.mu.Unlock()
}

func (d *postingDriver) committedIDs() []uuid.UUID {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.committed)
}

// run commits postings for dur on conns goroutines: posting i is due at start + i/rate (an open
// schedule, so a slow stretch shows as lateness instead of silently lowering the rate); rate 0
// runs unpaced.
func (d *postingDriver) run(ctx context.Context, rate float64, dur time.Duration, conns int) runResult {
	var next, failed atomic.Int64
	var lateMu sync.Mutex
	var late []time.Duration
	start := time.Now()
	end := start.Add(dur)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			var myLate []time.Duration
			for ctx.Err() == nil {
				due := time.Now()
				if rate > 0 {
					due = start.Add(time.Duration(float64(next.Add(1)-1) / rate * float64(time.Second)))
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
				}
				if !due.Before(end) {
					break
				}
				myLate = append(myLate, time.Since(due))
				id, err := d.post(ctx, rng)
				if err != nil {
					failed.Add(1)
					continue
				}
				d.mu.Lock()
				d.committed = append(d.committed, id)
				d.mu.Unlock()
			}
			lateMu.Lock()
			late = append(late, myLate...)
			lateMu.Unlock()
		}()
	}
	wg.Wait()
	d.mu.Lock()
	n := len(d.committed)
	d.mu.Unlock()
	return runResult{committed: n, failed: int(failed.Load()), elapsed: time.Since(start), lateP95: summarize(late).p95}
}

// post commits one posting in its own database transaction (its id a UUIDv7 as the database
// would give it, known before the commit): half deposits, a quarter each
// withdrawals and transfers between two random accounts.
func (d *postingDriver) post(ctx context.Context, rng *rand.Rand) (uuid.UUID, error) {
	p := bank.Posting{ID: uuid.Must(uuid.NewV7()), AccountID: d.accounts[rng.IntN(len(d.accounts))], Description: &d.tag,
		Amount: decimal.New(100+rng.Int64N(900), -2)}
	switch r := rng.IntN(4); {
	case r < 2:
		p.Type = bank.Deposit
	case r == 2:
		p.Type = bank.Withdrawal
	default:
		p.Type = bank.Transfer
		to := d.accounts[rng.IntN(len(d.accounts))]
		for to == p.AccountID {
			to = d.accounts[rng.IntN(len(d.accounts))]
		}
		p.RelatedAccountID = &to
	}
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		_, err := bank.Post(ctx, tx, p)
		return err
	})
	return p.ID, err
}

// seenSet records, per transaction id, its commit time, its _loaded_at and when a query first
// returned it.
type seenSet struct {
	mu        sync.Mutex
	rows      map[uuid.UUID]seenRow
	watermark time.Time // the newest _loaded_at seen: the next poll asks only for rows from there on
}

type seenRow struct{ commit, loaded, seen time.Time }

func newSeenSet() *seenSet {
	return &seenSet{rows: map[uuid.UUID]seenRow{}, watermark: time.Unix(0, 0)}
}

// add records the rows of one query answer (id, commit µs, _loaded_at µs, and optionally
// whether the row counts as there yet), received at seen. A row that does not count yet holds the
// watermark back, so the next polls ask for it again.
func (s *seenSet) add(rows [][]string, seen time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pending time.Time // the oldest _loaded_at of a row that does not count yet
	defer func() {
		if !pending.IsZero() && pending.Before(s.watermark) {
			s.watermark = pending
		}
	}()
	for _, r := range rows {
		if len(r) != 3 && len(r) != 4 {
			return fmt.Errorf("want 3 or 4 columns (id, commit µs, _loaded_at µs[, there yet]), got %d", len(r))
		}
		id, err := uuid.Parse(r[0])
		if err != nil {
			return fmt.Errorf("transaction id %q: %w", r[0], err)
		}
		commit, err1 := strconv.ParseInt(r[1], 10, 64)
		loaded, err2 := strconv.ParseInt(r[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("times of %s: %w", id, err)
		}
		if l := time.UnixMicro(loaded); l.After(s.watermark) {
			s.watermark = l
		}
		if len(r) == 4 && r[3] != "true" {
			if l := time.UnixMicro(loaded); pending.IsZero() || l.Before(pending) {
				pending = l
			}
			continue
		}
		if _, ok := s.rows[id]; !ok {
			s.rows[id] = seenRow{commit: time.UnixMicro(commit), loaded: time.UnixMicro(loaded), seen: seen}
		}
	}
	return nil
}

func (s *seenSet) since() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Loads and queries take turns on the DuckDB file, so no load commits with an older
	// _loaded_at after a query has run; a second of margin costs nothing (ids are deduplicated).
	return s.watermark.Add(-time.Second).UTC().Format("2006-01-02 15:04:05.999999+00")
}

func (s *seenSet) newestSighting() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t time.Time
	for _, r := range s.rows {
		if r.seen.After(t) {
			t = r.seen
		}
	}
	return t
}

func (s *seenSet) row(id uuid.UUID) (seenRow, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[id]
	return r, ok
}

func (s *seenSet) count(ids []uuid.UUID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := s.rows[id]; ok {
			n++
		}
	}
	return n
}

// latencies returns, for the ids seen, commit-to-seen and commit-to-_loaded_at, and how many of
// ids were never seen. The commit time comes from the row itself (the WAL's commit timestamp).
// With skip set, rows for which it answers true are left out of both.
func (s *seenSet) latencies(ids []uuid.UUID, skip func(seenRow) bool) (seen, loaded []time.Duration, missing int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		r, ok := s.rows[id]
		if !ok {
			missing++
			continue
		}
		if skip != nil && skip(r) {
			continue
		}
		seen = append(seen, r.seen.Sub(r.commit))
		loaded = append(loaded, r.loaded.Sub(r.commit))
	}
	return seen, loaded, missing
}

// duringDbt tells whether a row's wait from commit to seen overlapped one of runs: loads pause
// only while the stack snapshots RAW for dbt, but dbt competes with them for the CPU.
func duringDbt(runs []console.DbtRun) func(seenRow) bool {
	return func(r seenRow) bool {
		for _, run := range runs {
			from := run.At.Add(-time.Duration(run.Seconds * float64(time.Second)))
			if r.commit.Before(run.At) && r.seen.After(from) {
				return true
			}
		}
		return false
	}
}

// waitSeen polls (when poll is set; else the running pollers fill s) until every id is in s.
func waitSeen(ctx context.Context, s *seenSet, ids []uuid.UUID, poll func(context.Context) error, every, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		if s.count(ids) == len(ids) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d seen after %v (last poll error: %v)", s.count(ids), len(ids), limit, last)
		}
		if poll != nil {
			if err := poll(ctx); err != nil {
				last = err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// pollRaw finds the tagged postings in raw.transactions: inserts, and snapshot reads of rows the
// capture's initial snapshot found (on a busy machine it can start after the first postings
// commit; their commit time is then the read's, and only the reference burst's drain uses them).
func pollRaw(ctx context.Context, url, token, tag string, s *seenSet) error {
	return pollInto(ctx, url, token, s, fmt.Sprintf(`SELECT json_extract_string(after, '$.transaction_id'), commit_ts_us, epoch_us(_loaded_at)
		FROM raw.transactions WHERE _loaded_at >= TIMESTAMPTZ '%s' AND op IN ('c', 'r') AND json_extract_string(after, '$.description') = '%s'`, s.since(), tag))
}

// pollGold takes the commit time from gold's own last_changed_at (the commit of the row's
// latest version; benchmark postings have one version). A posting counts as in gold once
// gold.fct_transactions has it and the current gold.dim_accounts row of its account is of its
// transaction or later (the balance it left is queryable too).
func pollGold(ctx context.Context, url, token, tag string, s *seenSet) error {
	return pollInto(ctx, url, token, s, fmt.Sprintf(`SELECT t.transaction_id, epoch_us(t.last_changed_at), epoch_us(t._loaded_at),
			EXISTS (SELECT 1 FROM gold.dim_accounts a WHERE a.account_id = t.account_id AND a.is_current
				AND a.effective_from >= t.last_changed_at)
		FROM gold.fct_transactions t WHERE t._loaded_at >= TIMESTAMPTZ '%s' AND t.description = '%s'`, s.since(), tag))
}

func pollInto(ctx context.Context, url, token string, s *seenSet, query string) error {
	var buf bytes.Buffer
	if err := duckdb.PostQuery(ctx, url, token, query, &buf); err != nil {
		return err
	}
	seen := time.Now()
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", url, err)
	}
	if len(rows) == 0 {
		return nil
	}
	return s.add(rows[1:], seen)
}

// dbtRuns reads the stack's recent dbt runs from its console status.
func dbtRuns(ctx context.Context, consoleURL, token string) ([]console.DbtRun, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(consoleURL, "/")+"/api/status", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("console status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("console status answered %s: %s", resp.Status, b)
	}
	var st console.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("console status: %w", err)
	}
	return st.DbtRuns, nil
}

// latencySummary is p50, p95 and max of a set of durations.
type latencySummary struct{ p50, p95, max time.Duration }

func (l latencySummary) String() string {
	return fmt.Sprintf("p50 %.2f s, p95 %.2f s, max %.2f s", l.p50.Seconds(), l.p95.Seconds(), l.max.Seconds())
}

// summarize takes nearest-rank percentiles (the value at or below which p% of samples lie).
func summarize(d []time.Duration) latencySummary {
	if len(d) == 0 {
		return latencySummary{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return latencySummary{p50: rank(0.50), p95: rank(0.95), max: s[len(s)-1]}
}
