package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
)

// runSnapshotBench measures an online incremental snapshot of accounts by a `fin capture` process
// (its own database and slot, an embedded broker that acknowledges without storing) while
// inserts stream: its rate beside `COPY (SELECT * FROM accounts) TO STDOUT` of the same table, and
// its peak RSS beside the same process's peak while only streaming; then, with --rss-rows, the
// peak RSS of a snapshot of a larger table. It does so once per kind of key in --keys: the
// application's (the column default, uuidv7()) and random ones (gen_random_uuid(), the ids of
// tables written before the ids became time-ordered).
func runSnapshotBench(ctx context.Context, args []string) error {
	fs := newFlags("snapshot")
	var o snapshotOpts
	fs.StringVar(&o.fin, "fin", finBeside(), "the fin binary whose capture is measured (default: fin beside finbench)")
	fs.IntVar(&o.rows, "rows", 1_000_000, "rows in the table for the throughput figure")
	fs.IntVar(&o.rssRows, "rss-rows", 10_000_000, "rows in the table for the peak RSS figure (0 or <= --rows: skip), with the first --keys")
	fs.IntVar(&o.rate, "stream-rate", 100, "insert transactions per second streamed during the snapshots")
	fs.IntVar(&o.chunk, "chunk-size", 4096, "the capture's --chunk-size")
	fs.StringVar(&o.db, "db", "fin_bench_snapshot", "the benchmark's database, dropped and created again (its slot is named after it): another name lets two runs share a cluster")
	fs.StringVar(&o.logPath, "capture-log", "", "keep the capture's log, at debug level (chunk read and emit times), in this file")
	fs.StringVar(&o.against, "against", "", "a second fin binary: after the first snapshot, --pairs more of the same table, this binary's capture and --fin's alternating, each beside its own COPY TO STDOUT (one table for both: no regeneration between runs)")
	fs.IntVar(&o.pairs, "pairs", 0, "with --against: alternating pairs of snapshots after the first")
	fs.StringVar(&o.cpuProfile, "capture-cpuprofile", "", "write the capture's CPU profile of the timed snapshot (from its request to its end; go tool pprof) to this file, suffixed -random for the random keys' run (needs a fin that profiles between signals, FIN_CPUPROFILE_SIGNAL: an older one dies of SIGUSR1)")
	keys := fs.String("keys", "app,random", "the tables' keys, one run each: app (the column default the application uses), random (gen_random_uuid())")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	began := time.Now()
	for i, k := range strings.Split(*keys, ",") {
		expr, ok := map[string]string{"app": "", "random": "gen_random_uuid()"}[k]
		if !ok {
			return fmt.Errorf("--keys: %q is neither app nor random", k)
		}
		run := o
		if i > 0 {
			run.rssRows = 0
		}
		if run.cpuProfile != "" && k != "app" {
			run.cpuProfile += "-" + k
		}
		if err := run.measure(ctx, expr); err != nil {
			return fmt.Errorf("keys %s: %w", k, err)
		}
	}
	fmt.Printf("the benchmark ran %s\n", time.Since(began).Round(time.Second))
	return nil
}

// snapshotOpts are one snapshot benchmark's settings.
type snapshotOpts struct {
	fin, logPath, db, cpuProfile, against string
	rows, rssRows, rate, chunk, pairs     int
}

// measure runs the benchmark on a table whose keys are keyExpr ("": the column default).
func (o snapshotOpts) measure(ctx context.Context, keyExpr string) error {
	if !identifier.MatchString(o.db) {
		return fmt.Errorf("--db %q: want a plain lower-case identifier", o.db)
	}
	b := &captureBench{db: o.db, rows: o.rows, fin: o.fin, keyExpr: keyExpr}
	if err := b.setup(ctx); err != nil {
		return err
	}
	defer b.cleanup()
	if err := b.describeKeys(ctx); err != nil {
		return err
	}
	slot := strings.TrimPrefix(o.db, "fin_")
	if err := b.primeCapture(ctx, slot); err != nil { // the slot and its (near empty) initial snapshot
		return err
	}
	end, err := b.workload(ctx, max(1, o.rows/50_000))
	if err != nil {
		return err
	}
	copyRate, err := b.copyRate(ctx, o.rows)
	if err != nil {
		return err
	}

	child, finished, err := b.startSnapshotCapture(ctx, slot, o.chunk, o.logPath, o.cpuProfile)
	if err != nil {
		return err
	}
	defer stopChild(child)
	// Inserts stream throughout, so the snapshot runs interleaved with real changes.
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	var streamed atomic.Int64
	go b.streamInserts(wctx, o.rate, &streamed)
	// The new capture first streams the table's inserts from the slot: the snapshot is timed from
	// when it has caught up, not behind that backlog.
	if err := b.caughtUp(ctx, slot, end); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	streamingRSS := peakRSSOf(child.Process.Pid)

	if o.cpuProfile != "" {
		child.Process.Signal(syscall.SIGUSR1) // fin's profileBetweenSignals
	}
	cpu0 := cpuSecondsOf(child.Process.Pid)
	elapsed, err := b.timeSnapshot(ctx, finished)
	if err != nil {
		return err
	}
	cpu := cpuSecondsOf(child.Process.Pid) - cpu0
	if o.cpuProfile != "" {
		child.Process.Signal(syscall.SIGUSR2)
	}
	snapRate := float64(o.rows) / elapsed.Seconds()
	snapRSS := peakRSSOf(child.Process.Pid)
	fmt.Printf("online snapshot of %d rows (chunks of %d, %d inserts/s streaming): %.0f rows/s beside COPY TO STDOUT %.0f rows/s, ratio %.2f (target >= 0.5)\n",
		o.rows, o.chunk, o.rate, snapRate, copyRate, snapRate/copyRate)
	if err := b.afterSnapshot(ctx, snapRate, copyRate, cpu, elapsed); err != nil {
		return err
	}
	fmt.Printf("capture peak RSS: %.0f MB while streaming only, %.0f MB after the %d-row snapshot (budget 200 MB)\n",
		mb(streamingRSS), mb(snapRSS), o.rows)
	if o.against != "" && o.pairs > 0 {
		stopChild(child)
		if err := b.alternate(ctx, o, slot); err != nil {
			return err
		}
	} else if o.rssRows > o.rows {
		if err := b.rssRun(ctx, finished, slot, child.Process.Pid, o.rssRows); err != nil {
			return err
		}
	}
	stopWriter()
	fmt.Printf("streamed %d inserts during the run\n", streamed.Load())
	return nil
}

// alternate snapshots the same table o.pairs more times with each of o.against's and o.fin's
// capture in turn, a process of each per snapshot on the same slot, printing each snapshot's rate
// beside a COPY TO STDOUT timed just before it and the capture's CPU a row: pairs on one table, a
// few seconds apart, where separate runs would each regenerate the table minutes apart.
func (b *captureBench) alternate(ctx context.Context, o snapshotOpts, slot string) error {
	for pair := 1; pair <= o.pairs; pair++ {
		for _, bin := range []string{o.against, o.fin} {
			b.fin = bin
			child, finished, err := b.startSnapshotCapture(ctx, slot, o.chunk, "", "")
			if err != nil {
				return err
			}
			var end string
			if err := b.pool.QueryRow(ctx, "SELECT pg_logical_emit_message(true, 'fin-bench-end', '')::text").Scan(&end); err != nil {
				stopChild(child)
				return err
			}
			if err := b.caughtUp(ctx, slot, end); err != nil {
				stopChild(child)
				return err
			}
			copyRate, err := b.copyRate(ctx, o.rows)
			if err != nil {
				stopChild(child)
				return err
			}
			load, _ := os.ReadFile("/proc/loadavg")
			cpu0 := cpuSecondsOf(child.Process.Pid)
			elapsed, err := b.timeSnapshot(ctx, finished)
			cpu := cpuSecondsOf(child.Process.Pid) - cpu0
			stopChild(child)
			if err != nil {
				return err
			}
			rate := float64(o.rows) / elapsed.Seconds()
			fmt.Printf("pair %d, %s: %.0f rows/s beside COPY TO STDOUT %.0f rows/s, ratio %.2f; capture CPU %.2f µs a row (%.2f s in %.2f s); load %s\n",
				pair, bin, rate, copyRate, rate/copyRate, cpu*1e6/float64(o.rows), cpu, elapsed.Seconds(), strings.Join(strings.Fields(string(load))[:3], " "))
		}
	}
	b.fin = o.fin
	return nil
}

// identifier is a name safe to splice into SQL unquoted.
var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// describeKeys says which key generator the table's rows get: the column's default, as the
// application's inserts get it, or the benchmark's own.
func (b *captureBench) describeKeys(ctx context.Context) error {
	if b.keyExpr != "" {
		fmt.Printf("keys: %s, random (as in tables written before the ids became time-ordered)\n", b.keyExpr)
		return nil
	}
	var def string
	err := b.pool.QueryRow(ctx, `SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
		JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
		WHERE d.adrelid = 'accounts'::regclass AND a.attname = 'account_id'`).Scan(&def)
	if err != nil {
		return fmt.Errorf("accounts.account_id's default: %w", err)
	}
	fmt.Printf("keys: %s, the column default the application's inserts use (API, generator)\n", def)
	return nil
}

// afterSnapshot prints the key-order COPY and the capture's CPU during the snapshot.
func (b *captureBench) afterSnapshot(ctx context.Context, snapRate, copyRate, cpu float64, elapsed time.Duration) error {
	// After the snapshot, so that its reads do not warm shared_buffers for the snapshot's.
	keyRate, err := b.keyOrderRate(ctx, b.rows)
	if err != nil {
		return err
	}
	fmt.Printf("  the same COPY in key order (how the chunks read the table; Postgres alone): %.0f rows/s, %.2fx COPY TO STDOUT; the snapshot %.2fx that\n",
		keyRate, keyRate/copyRate, snapRate/keyRate)
	// The capture's CPU swings far less with the machine's load than the wall time does.
	fmt.Printf("capture CPU during the snapshot: %.2f s in %.2f s (%.2f µs a row; %.0f rows per CPU second, %.2fx COPY TO STDOUT's wall rate)\n",
		cpu, elapsed.Seconds(), cpu*1e6/float64(b.rows), float64(b.rows)/cpu, float64(b.rows)/cpu/copyRate)
	return nil
}

// streamInserts inserts an account rate times a second until ctx ends, counting them.
func (b *captureBench) streamInserts(ctx context.Context, rate int, streamed *atomic.Int64) {
	tick := time.NewTicker(time.Second / time.Duration(max(1, rate)))
	defer tick.Stop()
	for ctx.Err() == nil {
		<-tick.C
		if _, err := b.pool.Exec(ctx, `INSERT INTO accounts (account_id, customer_id, account_type, currency, nickname)
			VALUES (`+b.key()+`, $1, 'CHECKING', 'EUR', 'streamed')`, benchCustomer); err == nil {
			streamed.Add(1)
		}
	}
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// caughtUp waits until the capture has confirmed the slot past end.
func (b *captureBench) caughtUp(ctx context.Context, slot, end string) error {
	began := time.Now()
	for deadline := began.Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var done bool
		err := b.pool.QueryRow(ctx, "SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = $2", end, slot).Scan(&done)
		if err != nil {
			return fmt.Errorf("slot %s: %w", slot, err)
		}
		if done {
			fmt.Printf("  the capture streamed the table's inserts in %.1fs\n", time.Since(began).Seconds())
			return nil
		}
	}
	return fmt.Errorf("the capture did not stream up to %s in 10 minutes", end)
}

// rssRun grows accounts to rssRows and snapshots it again, printing the capture's peak RSS during
// that snapshot beside its peak over the same time while only streaming, and how long it ran.
//
// The rows are added while accounts is out of the publication, so the capture does not stream
// them first: only the snapshot reads them (and the run stays well under 20 minutes at 10M).
// They are added in sets of 500,000 with ascending keys (random keys make each insert touch a
// random index page) and without the table's foreign keys, which changes nothing the capture
// holds.
func (b *captureBench) rssRun(ctx context.Context, finished <-chan struct{}, slot string, pid, rssRows int) error {
	began := time.Now()
	var have int
	if err := b.pool.QueryRow(ctx, "SELECT count(*) FROM accounts").Scan(&have); err != nil {
		return err
	}
	end, err := b.fillUnpublished(ctx, rssRows-have)
	if err != nil {
		return err
	}
	if err := b.caughtUp(ctx, slot, end); err != nil {
		return err
	}
	filled := time.Since(began)
	const streamingFor = 20 * time.Second
	w := watchRSS(pid)
	time.Sleep(streamingFor)
	streaming := w.stop()
	w = watchRSS(pid)
	elapsed, err := b.timeSnapshot(ctx, finished)
	if err != nil {
		return err
	}
	snap := w.stop()
	fmt.Printf("capture RSS snapshotting a %d-row table: peak %.0f MB (%s) beside %.0f MB over %s while only streaming (%s); budget 200 MB, ratio %.2f\n",
		rssRows, mb(snap.peak), snap.how, mb(streaming.peak), streamingFor, streaming.how, float64(snap.peak)/(200<<20))
	fmt.Printf("  table filled to %d rows and streamed past in %s; snapshot of %d rows in %s (%.0f rows/s); this part ran %s (limit 20 min)\n",
		rssRows, filled.Round(time.Second), rssRows, elapsed.Round(time.Second), float64(rssRows)/elapsed.Seconds(), time.Since(began).Round(time.Second))
	return nil
}

// fillUnpublished adds n rows to accounts with the table out of the publication, and returns the
// WAL position of a marker written after it is back in.
func (b *captureBench) fillUnpublished(ctx context.Context, n int) (string, error) {
	// Foreign keys double the time of the inserts and mean nothing to the capture: they go
	// (this database is the benchmark's own and is dropped after it).
	_, err := b.pool.Exec(ctx, `DO $$ DECLARE c text; BEGIN
		FOR c IN SELECT conname FROM pg_constraint WHERE conrelid = 'accounts'::regclass AND contype = 'f' LOOP
			EXECUTE format('ALTER TABLE accounts DROP CONSTRAINT %I', c);
		END LOOP; END $$`)
	if err != nil {
		return "", fmt.Errorf("fill: drop foreign keys: %w", err)
	}
	if _, err := b.pool.Exec(ctx, "ALTER PUBLICATION fin_cdc DROP TABLE accounts"); err != nil {
		return "", fmt.Errorf("fill: %w", err)
	}
	began := time.Now()
	const set = 500_000
	for from := 0; from < n; from += set {
		_, err := b.pool.Exec(ctx, `INSERT INTO accounts (account_id, customer_id, account_type, currency, nickname, balance)
			SELECT ('f' || lpad(to_hex(g), 31, '0'))::uuid, $1, 'SAVINGS', 'EUR', 'bench ' || g, (g % 100000) / 100.0
			FROM generate_series($2::bigint, $3::bigint) g`, benchCustomer, from, min(from+set, n)-1)
		if err != nil {
			return "", fmt.Errorf("fill: %w", err)
		}
	}
	if _, err := b.pool.Exec(ctx, "ALTER PUBLICATION fin_cdc ADD TABLE accounts"); err != nil {
		return "", fmt.Errorf("fill: %w", err)
	}
	fmt.Printf("  %d rows added in %.1fs\n", n, time.Since(began).Seconds())
	var end string
	err = b.pool.QueryRow(ctx, "SELECT pg_logical_emit_message(true, 'fin-bench-end', '')::text").Scan(&end)
	return end, err
}

// rssWatch samples a process's resident memory until stopped.
type rssWatch struct {
	done chan struct{}
	out  chan rssPeak
}

// rssPeak is the highest resident memory seen, and how it was seen.
type rssPeak struct {
	peak int64
	how  string
}

// watchRSS starts sampling pid's VmRSS every 50 ms. It also resets the kernel's high-water mark
// (VmHWM, clear_refs 5) so that, where that is allowed, the peak between samples counts too.
func watchRSS(pid int) *rssWatch {
	reset := os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0) == nil
	w := &rssWatch{done: make(chan struct{}), out: make(chan rssPeak, 1)}
	go func() {
		var peak int64
		n := 0
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			peak, n = max(peak, procStatus(pid, "VmRSS:")), n+1
			select {
			case <-w.done:
				how := fmt.Sprintf("highest of %d VmRSS samples", n)
				if hwm := procStatus(pid, "VmHWM:"); reset && hwm >= peak {
					peak, how = hwm, how+" and VmHWM since the phase began"
				}
				w.out <- rssPeak{peak, how}
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *rssWatch) stop() rssPeak {
	close(w.done)
	return <-w.out
}

// cpuSecondsOf is the user and system CPU time pid has used (/proc/<pid>/stat, USER_HZ 100).
func cpuSecondsOf(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // the command name may hold anything
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat, counted from 1
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(utime+stime) / 100
}

// copyRate times COPY (SELECT * FROM accounts) TO STDOUT into nothing, best of two.
func (b *captureBench) copyRate(ctx context.Context, rows int) (float64, error) {
	return b.copyRateOf(ctx, rows, "COPY (SELECT * FROM accounts) TO STDOUT")
}

// keyOrderRate times the same COPY in primary-key order, as the chunk reads walk the table (an
// index scan, sorting off as on the chunk connection; timed after the snapshot): what Postgres
// alone needs to read the table by key, a bound for any snapshot chunked by key. Not the
// reference, a diagnosis: with random uuid keys each row is on a random heap page.
func (b *captureBench) keyOrderRate(ctx context.Context, rows int) (float64, error) {
	return b.copyRateOf(ctx, rows, "COPY (SELECT * FROM accounts ORDER BY account_id) TO STDOUT")
}

// copyRateOf times a COPY ... TO STDOUT of rows rows into nothing, best of two, with sorting off.
func (b *captureBench) copyRateOf(ctx context.Context, rows int, copySQL string) (float64, error) {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET enable_sort = off"); err != nil {
		return 0, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "RESET enable_sort")
	best := 0.0
	for range 2 {
		start := time.Now()
		if _, err := conn.Conn().PgConn().CopyTo(ctx, io.Discard, copySQL); err != nil {
			return 0, fmt.Errorf("%s: %w", copySQL, err)
		}
		best = max(best, float64(rows)/time.Since(start).Seconds())
	}
	return best, nil
}

// startSnapshotCapture starts `fin capture` and reports each "incremental snapshot finished" of
// its log on the returned channel.
func (b *captureBench) startSnapshotCapture(ctx context.Context, slot string, chunk int, logPath, cpuProfile string) (*exec.Cmd, <-chan struct{}, error) {
	cmd := exec.CommandContext(ctx, b.fin, "capture", "--slot", slot, "--chunk-size", strconv.Itoa(chunk))
	level := "INFO"
	var keep io.Writer = io.Discard
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, nil, err
		}
		level, keep = "DEBUG", f
	}
	cmd.Env = append(os.Environ(), "DATABASE_URL="+b.url, "KAFKA_BROKERS="+strings.Join(b.seeds, ","), "LOG_LEVEL="+level)
	if cpuProfile != "" {
		cmd.Env = append(cmd.Env, "FIN_CPUPROFILE="+cpuProfile, "FIN_CPUPROFILE_SIGNAL=1")
	}
	logs, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start capture: %w", err)
	}
	finished := make(chan struct{}, 4)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(keep, line)
			switch {
			case strings.Contains(line, `"msg":"incremental snapshot finished"`):
				finished <- struct{}{}
			case strings.Contains(line, `"level":"ERROR"`):
				fmt.Fprintln(os.Stderr, line)
			}
		}
	}()
	return cmd, finished, nil
}

// timeSnapshot requests a snapshot of accounts and waits for the capture to finish it.
func (b *captureBench) timeSnapshot(ctx context.Context, finished <-chan struct{}) (time.Duration, error) {
	start := time.Now()
	if _, err := capture.RequestSnapshot(ctx, b.pool, "public.debezium_signal", []string{"public.accounts"}); err != nil {
		return 0, err
	}
	select {
	case <-finished:
		return time.Since(start), nil
	case <-time.After(30 * time.Minute):
		return 0, errors.New("the snapshot did not finish within 30 minutes")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
