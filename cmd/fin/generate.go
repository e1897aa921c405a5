package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/fin-orchestrator/fin-orchestrator/shared/generator"
)

func init() {
	register(command{name: "generate", summary: "generate synthetic banking activity (continuous; --once for a bulk load)", run: runGenerate})
}

func runGenerate(ctx context.Context, args []string) error {
	fs := newFlags("generate", "[--once] [--config config.yaml] [--seed N] [--rate N]")
	once := fs.Bool("once", false, "insert exactly the configured counts through COPY, then exit")
	path := fs.String("config", "", "generator configuration (default: ./config.yaml when present, else built-in defaults)")
	seed := fs.Int64("seed", 0, "override the configured seed")
	rate := fs.Float64("rate", 0, "override continuous.rate (operations per second)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := atLeast(fs, "rate", *rate, 0); err != nil {
		return err
	}
	cfg, err := loadGeneratorConfig(*path, *seed, *rate)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// A connection for each of the stream's writers.
	pool, err := openMigrated(ctx, max(4, cfg.Continuous.Writers))
	if err != nil {
		return err
	}
	defer pool.Close()
	if *once {
		return bulkLoad(ctx, pool, cfg)
	}
	return generateContinuously(ctx, pool, cfg)
}

// loadGeneratorConfig reads the configuration, checked in full before anything is written.
func loadGeneratorConfig(path string, seed int64, rate float64) (generator.Config, error) {
	if path == "" {
		if _, err := os.Stat("config.yaml"); err == nil {
			path = "config.yaml"
		}
	}
	cfg := generator.Default()
	if path != "" {
		var err error
		if cfg, err = generator.Load(path); err != nil {
			return cfg, err
		}
	}
	if seed != 0 {
		cfg.Seed = seed
	}
	if rate != 0 {
		cfg.Continuous.Rate = rate
	}
	return cfg, cfg.Validate()
}

func bulkLoad(ctx context.Context, pool *pgxpool.Pool, cfg generator.Config) error {
	var bar *progressbar.ProgressBar
	phase := ""
	res, err := generator.Bulk(ctx, pool, cfg, func(p string, done, total int) {
		if p != phase {
			if bar != nil {
				bar.Finish()
				fmt.Fprintln(os.Stderr)
			}
			phase = p
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription(fmt.Sprintf("%-12s", p)), progressbar.OptionShowCount(),
				progressbar.OptionSetVisibility(term.IsTerminal(int(os.Stderr.Fd()))), progressbar.OptionThrottle(100*time.Millisecond))
		}
		bar.Set(done)
	})
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return err
	}
	rate := float64(res.Transactions) / res.TransactionsElapsed.Seconds()
	fmt.Printf("inserted %d customers, %d accounts, %d transactions in %s (ledger %.0f rows/s)\n",
		res.Customers, res.Accounts, res.Transactions, res.Elapsed.Round(time.Millisecond), rate)
	return nil
}

// generateContinuously runs the stream and prints its progress once a second until Ctrl-C.
func generateContinuously(ctx context.Context, pool *pgxpool.Pool, cfg generator.Config) error {
	stream, err := generator.NewStream(ctx, pool, cfg)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx) }()
	fmt.Fprintf(os.Stderr, "generating about %.0f operations/s with %d writers (seed %d); Ctrl-C stops\n",
		cfg.Continuous.Rate, cfg.Continuous.Writers, cfg.Seed)
	showProgress(ctx, &stream.Stats, cfg.Continuous.Writers, done)
	return <-done
}

// showProgress prints one line of counts per second (rewritten in place on a terminal).
func showProgress(ctx context.Context, s *generator.Stats, writers int, done <-chan error) {
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start, last := time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr)
			return
		case err := <-done:
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
			return
		case now := <-tick.C:
			if !tty && now.Sub(last) < 10*time.Second {
				continue
			}
			last = now
			// busy: how many writers were in operations on average; near all of them, the rate is
			// what their round trips allow on this machine, not what was asked.
			elapsed := time.Since(start)
			line := fmt.Sprintf("%6.0fs  ops %d  customers +%d ~%d -%d closed %d  accounts +%d closed %d reopened %d  transactions +%d reversed %d  declined %d failed %d  busy %.1f of %d writers",
				elapsed.Seconds(), s.Ops.Load(), s.CustomersCreated.Load(), s.CustomersUpdated.Load(),
				s.CustomersDeleted.Load(), s.CustomersClosed.Load(), s.AccountsOpened.Load(), s.AccountsClosed.Load(),
				s.AccountsReopened.Load(), s.Transactions.Load(), s.Reversals.Load(), s.Declined.Load(), s.Failed.Load(),
				float64(s.BusyNanos.Load())/float64(elapsed), writers)
			if tty {
				fmt.Fprintf(os.Stderr, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(os.Stderr, line)
			}
		}
	}
}
