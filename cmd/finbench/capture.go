package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/database"
	"github.com/fin-orchestrator/fin-orchestrator/shared/kafka"
	"github.com/fin-orchestrator/fin-orchestrator/shared/localpg"
	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// captureBench holds one benchmark run: its own database, slots and an embedded broker that
// acknowledges without storing (so the figures are the capture's, not the broker's memory).
type captureBench struct {
	db       string
	url      string
	pool     *pgxpool.Pool
	seeds    []string
	rows     int
	txns     int
	rounds   int
	fin      string // the fin binary whose `fin capture` is measured
	realKafk string
	dbzDir   string // Connect's state (offsets) for this run only
	keyExpr  string // the accounts' keys: "" for the column default (the application's)
}

// key is the SQL expression of a new account's key.
func (b *captureBench) key() string {
	if b.keyExpr == "" {
		return "DEFAULT"
	}
	return b.keyExpr
}

const benchCustomer = "11111111-1111-4111-8111-111111111111"

func runCaptureBench(ctx context.Context, args []string) error {
	fs := newFlags("capture")
	rows := fs.Int("rows", 1_000_000, "row changes per workload")
	txns := fs.Int("txns", 1000, "transactions the throughput workload spreads them over")
	rounds := fs.Int("rounds", 3, "alternating rounds of each reader on the same changes (best kept: the machine is shared)")
	debezium := fs.String("debezium-kafka", "", "bootstrap of a real Kafka broker: also run Debezium (scripts/debezium.sh) on the workload")
	fin := fs.String("fin", finBeside(), "the fin binary whose capture is measured (default: fin beside finbench)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b := &captureBench{rows: *rows, txns: *txns, rounds: *rounds, fin: *fin, realKafk: *debezium, db: "fin_bench_capture"}
	if *debezium != "" {
		dir, err := os.MkdirTemp("", "fin-bench-debezium-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b.dbzDir = dir
	}
	if err := b.setup(ctx); err != nil {
		return err
	}
	defer b.cleanup()

	// Slots first, so each reader finds the whole workload waiting in the WAL.
	for r := 1; r <= b.rounds; r++ {
		if _, err := b.pool.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", recvSlot(r)); err != nil {
			return fmt.Errorf("create pg_recvlogical slot: %w", err)
		}
		if err := b.primeCapture(ctx, captureSlot(r)); err != nil {
			return err
		}
	}
	if b.realKafk != "" {
		if err := b.debezium(ctx, "start"); err != nil {
			return err
		}
		if _, err := b.countTopic(ctx, "fin.public.customers", 1, time.Time{}); err != nil {
			return fmt.Errorf("debezium snapshot: %w", err)
		}
		if err := b.debezium(ctx, "stop"); err != nil {
			return err
		}
	}

	fmt.Printf("workload: %d row changes in %d transactions\n", b.rows, b.txns)
	end, err := b.workload(ctx, b.txns)
	if err != nil {
		return err
	}
	refRate, goRate, _, err := b.compare(ctx, end)
	if err != nil {
		return err
	}
	fmt.Printf("capture throughput (best of %d rounds each): go capture %.0f rows/s, pg_recvlogical (pgoutput) %.0f rows/s, ratio %.2f (target >= 0.8)\n", b.rounds,
		goRate, refRate, goRate/refRate)
	if b.realKafk != "" {
		dbzRate, err := b.timeDebezium(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("capture vs Debezium: go capture %.0f rows/s, Debezium 3.6.1 on Connect %.0f rows/s, ratio %.2f (target >= 3)\n",
			goRate, dbzRate, goRate/dbzRate)
	}

	fmt.Printf("workload: %d row changes in one transaction\n", b.rows)
	end, err = b.workload(ctx, 1)
	if err != nil {
		return err
	}
	refRate, rate, peak, err := b.compare(ctx, end)
	if err != nil {
		return err
	}
	fmt.Printf("capture one %d-row transaction: go capture %.0f rows/s beside pg_recvlogical %.0f rows/s (ratio %.2f); peak RSS %.0f MB (budget 200 MB, ratio %.2f)\n",
		b.rows, rate, refRate, rate/refRate, float64(peak)/(1<<20), float64(peak)/(200<<20))
	return nil
}

// finBeside is bin/fin when finbench is bin/finbench, as scripts/bench.d builds them.
func finBeside() string {
	self, err := os.Executable()
	if err != nil {
		return "fin"
	}
	return filepath.Join(filepath.Dir(self), "fin")
}

func recvSlot(round int) string    { return fmt.Sprintf("bench_recvlogical_%d", round) }
func captureSlot(round int) string { return fmt.Sprintf("bench_capture_%d", round) }

// compare reads the waiting changes with pg_recvlogical and with the capture, alternating, once
// per round (each round has its own pair of slots), and keeps each one's best rate and the
// capture's highest peak RSS.
func (b *captureBench) compare(ctx context.Context, end string) (ref, capture float64, peak int64, err error) {
	for r := 1; r <= b.rounds; r++ {
		start := time.Now()
		if err := b.recvlogical(ctx, recvSlot(r), end); err != nil {
			return 0, 0, 0, err
		}
		refRate := float64(b.rows) / time.Since(start).Seconds()
		rate, rss, err := b.timeCapture(ctx, captureSlot(r), end)
		if err != nil {
			return 0, 0, 0, err
		}
		fmt.Printf("  round %d: pg_recvlogical %.0f rows/s, go capture %.0f rows/s, peak RSS %.0f MB\n", r, refRate, rate, float64(rss)/(1<<20))
		ref, capture, peak = max(ref, refRate), max(capture, rate), max(peak, rss)
	}
	return ref, capture, peak, nil
}

func (b *captureBench) setup(ctx context.Context) error {
	base := localpg.URL()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer admin.Close(ctx)
	if err := b.dropAll(ctx, admin); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+b.db); err != nil {
		return fmt.Errorf("create %s: %w", b.db, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("bench needs a postgres:// URL: %w", err)
	}
	u.Path = "/" + b.db
	b.url = u.String()
	if b.pool, err = database.Open(ctx, b.url, 4); err != nil {
		return err
	}
	if _, err := database.Migrate(ctx, b.pool); err != nil {
		return err
	}
	_, err = b.pool.Exec(ctx, `INSERT INTO customers (customer_id, first_name, last_name, email) VALUES ($1, 'Bench', 'Mark', 'bench@example.com')`, benchCustomer)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	var seedsStop func()
	b.seeds, seedsStop, err = kafka.StartEmbedded(ctx, kafka.EmbeddedConfig{Blackhole: true})
	_ = seedsStop // stops with ctx
	return err
}

// dropAll drops the benchmark's slot and database, trying again while the capture of the run
// before still holds the slot: a database with an active slot cannot be dropped, and the next
// run's CREATE DATABASE would then fail on the leftover.
func (b *captureBench) dropAll(ctx context.Context, admin *pgx.Conn) error {
	policy := retry.Policy{Attempts: 8, Backoff: retry.Backoff{First: 200 * time.Millisecond, Max: 5 * time.Second}}
	return retry.Do(ctx, policy, func(ctx context.Context) error {
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL", b.db); err != nil {
			return fmt.Errorf("stop the capture of %s: %w", b.db, err)
		}
		if _, err := admin.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", b.db); err != nil {
			return fmt.Errorf("drop the slots of %s: %w", b.db, err)
		}
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+b.db+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop %s: %w", b.db, err)
		}
		return nil
	})
}

func (b *captureBench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b.realKafk != "" {
		b.debezium(ctx, "stop")
	}
	if b.pool != nil {
		b.pool.Close()
	}
	admin, err := pgx.Connect(ctx, localpg.URL())
	if err != nil {
		slog.Warn("bench cleanup", "err", err)
		return
	}
	defer admin.Close(ctx)
	if err := b.dropAll(ctx, admin); err != nil {
		slog.Warn("bench cleanup", "err", err)
	}
}

// workload commits rows inserts in txns transactions and returns the WAL position of a marker
// written after them.
func (b *captureBench) workload(ctx context.Context, txns int) (string, error) {
	per := b.rows / txns
	began := time.Now()
	for i := 0; i < txns; i++ {
		// A column list without account_id takes its default; an expression is the benchmark's.
		cols, key := "", ""
		if b.keyExpr != "" {
			cols, key = "account_id, ", b.keyExpr+", "
		}
		_, err := b.pool.Exec(ctx, `INSERT INTO accounts (`+cols+`customer_id, account_type, currency, nickname, balance)
			SELECT `+key+`$1, 'SAVINGS', 'EUR', 'bench ' || g, (g % 100000) / 100.0 FROM generate_series(1, $2) g`, benchCustomer, per)
		if err != nil {
			return "", fmt.Errorf("workload: %w", err)
		}
	}
	// The end is marked by a logical message of this database: the cluster's WAL end would also
	// count other databases' writes, which no reader of this database's slot ever confirms past.
	var end string
	if err := b.pool.QueryRow(ctx, "SELECT pg_logical_emit_message(true, 'fin-bench-end', '')::text").Scan(&end); err != nil {
		return "", err
	}
	fmt.Printf("  generated in %.1fs, WAL end %s\n", time.Since(began).Seconds(), end)
	return end, nil
}

// recvlogical reads the slot up to end with pg_recvlogical, the decoding limit of Postgres.
func (b *captureBench) recvlogical(ctx context.Context, slot, end string) error {
	cmd := exec.CommandContext(ctx, "pg_recvlogical", "-d", b.url, "--slot", slot, "--start",
		"-o", "proto_version=1", "-o", "publication_names=fin_cdc", "-o", "messages=true", "--endpos", end, "-f", "/dev/null", "--no-loop")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_recvlogical: %v: %s", err, out)
	}
	return nil
}

// primeCapture runs the capture once so its slot exists (and its snapshot is done) before the
// workload.
func (b *captureBench) primeCapture(ctx context.Context, slot string) error {
	child, err := b.startCapture(ctx, slot)
	if err != nil {
		return err
	}
	defer stopChild(child)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var done bool
		b.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM capture_snapshots WHERE slot_name = $1)", slot).Scan(&done)
		if done {
			return nil
		}
	}
	return errors.New("the capture did not finish its snapshot within a minute")
}

func (b *captureBench) startCapture(ctx context.Context, slot string) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, b.fin, "capture", "--slot", slot)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+b.url, "KAFKA_BROKERS="+strings.Join(b.seeds, ","), "LOG_LEVEL=WARN")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start capture: %w", err)
	}
	return cmd, nil
}

func stopChild(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// timeCapture starts the capture on the waiting workload and returns its rate (rows per second
// until its slot confirms end, so every event was acknowledged by the broker) and peak RSS.
func (b *captureBench) timeCapture(ctx context.Context, slot, end string) (rate float64, peakRSS int64, err error) {
	start := time.Now()
	child, err := b.startCapture(ctx, slot)
	if err != nil {
		return 0, 0, err
	}
	defer stopChild(child)
	var streaming time.Duration
	for deadline := time.Now().Add(30 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var reached, active bool
		err := b.pool.QueryRow(ctx, "SELECT confirmed_flush_lsn >= $1::text::pg_lsn, active FROM pg_replication_slots WHERE slot_name = $2", end, slot).Scan(&reached, &active)
		if err != nil {
			return 0, 0, fmt.Errorf("read capture slot: %w", err)
		}
		if active && streaming == 0 {
			streaming = time.Since(start)
		}
		if reached {
			elapsed := time.Since(start)
			slog.Debug("capture timed", "streaming_after", streaming, "caught_up_after", elapsed)
			return float64(b.rows) / elapsed.Seconds(), peakRSSOf(child.Process.Pid), nil
		}
		if child.ProcessState != nil {
			return 0, 0, errors.New("the capture exited early")
		}
	}
	return 0, 0, errors.New("the capture did not catch up within 30 minutes")
}

// peakRSSOf reads a process's high-water resident memory (VmHWM) from /proc.
func peakRSSOf(pid int) int64 { return procStatus(pid, "VmHWM:") }

// procStatus reads a memory field (in kB) of /proc/<pid>/status, in bytes; 0 when unreadable.
func procStatus(pid int, field string) int64 {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (b *captureBench) debezium(ctx context.Context, action string) error {
	cmd := exec.CommandContext(ctx, "bash", "scripts/debezium.sh", action)
	cmd.Env = append(os.Environ(), "KAFKA_BROKERS="+b.realKafk, "DEBEZIUM_DIR="+b.dbzDir,
		"FIN_DBZ_PG_DATABASE="+b.db, "FIN_DBZ_SLOT=bench_debezium")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/debezium.sh %s: %w", action, err)
	}
	return nil
}

// timeDebezium restarts Debezium on the waiting workload and returns its rate between its first
// and last event of the workload (Kafka record timestamps), which leaves its start-up out.
func (b *captureBench) timeDebezium(ctx context.Context) (float64, error) {
	since := time.Now()
	if err := b.debezium(ctx, "start"); err != nil {
		return 0, err
	}
	span, err := b.countTopic(ctx, "fin.public.accounts", b.rows, since)
	if err != nil {
		return 0, fmt.Errorf("debezium: %w", err)
	}
	return float64(b.rows) / span.Seconds(), nil
}

// countTopic consumes topic until n records written after since, and returns the time between
// the first and the last of them.
func (b *captureBench) countTopic(ctx context.Context, topic string, n int, since time.Time) (time.Duration, error) {
	cl, err := kafka.NewClient([]string{b.realKafk}, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	var first, last time.Time
	count := 0
	for count < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%s: %d of %d records: %w", topic, count, n, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Timestamp.Before(since) {
				return
			}
			if count == 0 {
				first = r.Timestamp
			}
			last = r.Timestamp
			count++
		})
	}
	return last.Sub(first), nil
}
