package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bank"
	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
)

// runBenchSnapshotFreshness measures, on a running stack (`fin up`), commit -> queryable in
// raw.transactions of paced postings twice in the same run: first with streaming only (the
// reference), then while an online incremental snapshot of accounts (grown by --rows first, so
// it lasts) runs, as `fin snapshot` starts it. The postings bank.Post commits update account
// balances too, so the snapshot's windows meet real changes of the table they read.
func runBenchSnapshotFreshness(ctx context.Context, args []string) error {
	fs := newFlags("snapshot-freshness")
	rate := fs.Float64("rate", targetTPS, "postings per second to commit")
	seconds := fs.Int("seconds", 60, "how long each paced run lasts")
	conns := fs.Int("conns", 48, "Postgres connections (one goroutine each)")
	accounts := fs.Int("accounts", 1000, "accounts the postings spread over")
	rows := fs.Int("rows", 200_000, "rows added to accounts first, for the snapshot to read")
	poll := fs.Duration("poll", 100*time.Millisecond, "interval between queries of raw.transactions")
	signalTable := fs.String("signal-table", "public.debezium_signal", "the capture's signal table")
	consoleURL := fs.String("console", cmp.Or(os.Getenv("FIN_CONSOLE_URL"), "http://127.0.0.1:8080"), "the running stack's console (env FIN_CONSOLE_URL)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	token, sqlURL, pool, err := runningStack(ctx, *consoleURL, *conns+4)
	if err != nil {
		return err
	}
	defer pool.Close()
	tag := "bench-snapfresh-" + uuid.NewString()[:8]
	fmt.Printf("freshness during an online snapshot (%s): %.0f postings/s for %d s twice, accounts grown by %d rows\n", tag, *rate, *seconds, *rows)
	ids, err := openBenchAccounts(ctx, pool, tag, *accounts)
	if err != nil {
		return err
	}
	if err := growAccounts(ctx, pool, tag, *rows); err != nil {
		return err
	}
	d := &postingDriver{pool: pool, accounts: ids, tag: tag}
	run := func(snapshot bool, dur time.Duration) (phaseResult, error) {
		return d.phase(ctx, phaseConfig{rate: *rate, dur: dur, conns: *conns,
			poll: *poll, sqlURL: sqlURL, token: token, tag: tag, signalTable: *signalTable, snapshot: snapshot})
	}
	// Three seconds of postings through the whole stack first: the grown table has streamed by
	// the time they are all in RAW.
	if _, err := run(false, 3*time.Second); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	dur := time.Duration(*seconds) * time.Second
	ref, err := run(false, dur)
	if err != nil {
		return fmt.Errorf("streaming only: %w", err)
	}
	snap, err := run(true, dur)
	if err != nil {
		return fmt.Errorf("during the snapshot: %w", err)
	}
	return reportSnapshotFreshness(ref, snap, *rate)
}

// growAccounts adds rows accounts (zero balance, one customer) in transactions of 50,000.
func growAccounts(ctx context.Context, pool *pgxpool.Pool, tag string, rows int) error {
	var customer uuid.UUID
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		c, err := bank.CreateCustomer(ctx, tx, uuid.Nil, bank.CustomerFields{FirstName: "Bench", LastName: "Snapshot", Email: tag + "-grow@example.com"})
		customer = c.ID
		return err
	})
	if err != nil {
		return fmt.Errorf("grow accounts: %w", err)
	}
	for done := 0; done < rows; done += 50_000 {
		_, err := pool.Exec(ctx, `INSERT INTO accounts (customer_id, account_type, currency, nickname, balance)
			SELECT $1, 'SAVINGS', 'EUR', 'snapshot bench ' || g, 0 FROM generate_series(1, $2) g`, customer, min(50_000, rows-done))
		if err != nil {
			return fmt.Errorf("grow accounts: %w", err)
		}
	}
	return nil
}

type phaseConfig struct {
	rate                            float64
	dur, poll                       time.Duration
	conns                           int
	sqlURL, token, tag, signalTable string
	snapshot                        bool
}

// phaseResult is one paced run: its postings' commit -> RAW latencies, all and those committed
// while a snapshot ran (from its request to its last watermark row seen).
type phaseResult struct {
	res              runResult
	all, during      []time.Duration
	snapFrom, snapTo time.Time
	snapFinished     bool
	// stages split the delay of all postings, and of those committed while the snapshot ran.
	stages, stagesDuring stageTimes
}

// phase runs the paced postings (with a snapshot requested at their start when asked) and waits
// until every committed one is in raw.transactions.
func (d *postingDriver) phase(ctx context.Context, cfg phaseConfig) (phaseResult, error) {
	d.reset()
	raw := newSeenSet()
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var out phaseResult
	var lastActive atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pctx.Err() == nil {
			_ = pollRaw(pctx, cfg.sqlURL, cfg.token, cfg.tag, raw)
			time.Sleep(cfg.poll)
		}
	}()
	if cfg.snapshot {
		out.snapFrom = time.Now()
		if _, err := capture.RequestSnapshot(ctx, d.pool, cfg.signalTable, []string{"public.accounts"}); err != nil {
			stop()
			return out, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.watchSnapshot(pctx, cfg.signalTable, out.snapFrom, &lastActive)
		}()
	}
	out.res = d.run(ctx, cfg.rate, cfg.dur, cfg.conns)
	committed := d.committedIDs()
	waitErr := waitSeen(ctx, raw, committed, nil, cfg.poll, 3*time.Minute)
	stop()
	wg.Wait()
	if waitErr != nil {
		return out, waitErr
	}
	out.all, _, _ = raw.latencies(committed, nil)
	var err error
	if out.stages, err = readStages(ctx, cfg.sqlURL, cfg.token, cfg.tag, raw, committed, nil); err != nil {
		return out, err
	}
	if cfg.snapshot {
		out.snapTo = time.Unix(0, lastActive.Load())
		out.snapFinished = out.snapTo.Before(time.Now().Add(-time.Second))
		outside := func(r seenRow) bool { return r.commit.Before(out.snapFrom) || r.commit.After(out.snapTo) }
		out.during, _, _ = raw.latencies(committed, outside)
		if out.stagesDuring, err = readStages(ctx, cfg.sqlURL, cfg.token, cfg.tag, raw, committed, outside); err != nil {
			return out, err
		}
	}
	return out, nil
}

// watchSnapshot records the last moment the signal table held a snapshot window's watermark: the
// capture deletes spent ones with the next and the rest when the snapshot finishes.
func (d *postingDriver) watchSnapshot(ctx context.Context, signalTable string, from time.Time, last *atomic.Int64) {
	last.Store(from.UnixNano())
	for ctx.Err() == nil {
		var active bool
		err := d.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM "+signalTable+" WHERE type IN ('snapshot-window-open', 'snapshot-window-close'))").Scan(&active)
		if err == nil && active {
			last.Store(time.Now().UnixNano())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reportSnapshotFreshness prints both phases beside the target and each other.
func reportSnapshotFreshness(ref, snap phaseResult, rate float64) error {
	r, a, s := summarize(ref.all), summarize(snap.all), summarize(snap.during)
	fmt.Printf("  streaming only: %d postings at %.1f tx/s, commit -> RAW %s\n", len(ref.all), ref.res.tps(), r)
	ref.stages.print("streaming only")
	state := "finished"
	if !snap.snapFinished {
		state = "still running at the end"
	}
	fmt.Printf("  with the snapshot: %d postings at %.1f tx/s, commit -> RAW %s; snapshot of accounts ran %.1f s (%s)\n",
		len(snap.all), snap.res.tps(), a, snap.snapTo.Sub(snap.snapFrom).Seconds(), state)
	snap.stagesDuring.print("committed while the snapshot ran")
	verdict := "met"
	if s.p95 > targetRawP95 || snap.res.tps() < 0.95*rate || len(snap.during) == 0 {
		verdict = "NOT met"
	}
	fmt.Printf("  committed while the snapshot ran: %d postings, commit -> RAW %s; target p95 <= %v at %.0f tx/s: %s (p95/target %.2f; beside streaming only %.2fx)\n",
		len(snap.during), s, targetRawP95, rate, verdict, s.p95.Seconds()/targetRawP95.Seconds(), s.p95.Seconds()/max(r.p95.Seconds(), 1e-9))
	return nil
}
