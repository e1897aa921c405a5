package stack

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/runlog"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// RunLogPath is where the console's records (dbt runs, loads, landing batches) are kept.
func RunLogPath(stateDir string) string { return filepath.Join(stateDir, "console", "runs.db") }

// recorder writes the console's records to the run log off the data path: the landing and the
// loader hand a record over and go on, and one goroutine commits what has queued in one
// transaction (one fsync for a burst). A record is an observation, not the data: the bronze
// object and the load ledger stay the truth, so what a crash loses from the queue is only a row
// of the views.
type recorder struct {
	log  *runlog.Log
	ch   chan record
	done chan struct{}
	warn *slog.Logger
}

type record struct {
	kind          string
	value, detail []byte
}

func newRecorder(l *runlog.Log, warn *slog.Logger) *recorder {
	return &recorder{log: l, ch: make(chan record, 4096), done: make(chan struct{}), warn: warn}
}

// add queues v (and a run's detail) as JSON; once the recorder has stopped it drops them, and a
// stack without one (a test's) keeps nothing.
func (r *recorder) add(kind string, v, detail any) {
	if r == nil {
		return
	}
	rec := record{kind: kind}
	rec.value, _ = json.Marshal(v)
	if detail != nil {
		rec.detail, _ = json.Marshal(detail)
	}
	select {
	case r.ch <- rec:
	case <-r.done:
	}
}

// run commits queued records until ctx ends, then what is still queued.
func (r *recorder) run(ctx context.Context) {
	defer close(r.done)
	for {
		select {
		case rec := <-r.ch:
			r.commit(append([]record{rec}, r.queued()...))
		case <-ctx.Done():
			r.commit(r.queued())
			return
		}
	}
}

func (r *recorder) queued() []record {
	var out []record
	for len(out) < 1024 {
		select {
		case rec := <-r.ch:
			out = append(out, rec)
		default:
			return out
		}
	}
	return out
}

// commit adds recs, a transaction per run of one kind, in the order they came.
func (r *recorder) commit(recs []record) {
	for len(recs) > 0 {
		n := 1
		for n < len(recs) && recs[n].kind == recs[0].kind {
			n++
		}
		var values, details [][]byte
		for _, rec := range recs[:n] {
			values, details = append(values, rec.value), append(details, rec.detail)
		}
		if _, err := r.log.Add(recs[0].kind, values, details); err != nil {
			r.warn.Error("console records not kept", "kind", recs[0].kind, "count", n, "err", err)
		}
		recs = recs[n:]
	}
}

// batchRecorder records each bronze object the landing writes as a landing batch.
type batchRecorder struct {
	landing.ObjectPutter
	rec *recorder
}

func (b batchRecorder) PutObject(ctx context.Context, bucket, key string, r io.Reader, size int64, opts minio.PutObjectOptions) (minio.UploadInfo, error) {
	info, err := b.ObjectPutter.PutObject(ctx, bucket, key, r, size, opts)
	if k, kerr := bronze.ParseKey(key); err == nil && kerr == nil {
		b.rec.add(runlog.Batches, console.Batch{At: time.Now().UTC(), Object: key, Kind: "bronze", Topic: k.Topic,
			Partition: k.Partition, First: k.First, Last: k.Last, Bytes: size}, nil)
	}
	return info, err
}

// loadRecorder records each object the loader loads (duplicates are not loads).
type loadRecorder struct {
	loader.Warehouse
	rec *recorder
}

func (l loadRecorder) Load(ctx context.Context, obj warehouse.Object) (warehouse.Result, error) {
	res, err := l.Warehouse.Load(ctx, obj)
	if err == nil && !res.Duplicate {
		ld := console.Load{Key: obj.Key, Table: obj.Table, Rows: res.Rows, LoadedAt: time.Now().UTC(), Replaced: res.Replaced}
		if k, kerr := bronze.ParseKey(obj.Key); kerr == nil {
			ld.Topic, ld.Partition, ld.First, ld.Last = k.Topic, k.Partition, k.First, k.Last
		}
		l.rec.add(runlog.Loads, ld, nil)
	}
	return res, err
}

// runCapture is the dbt-runner's console output and warehouse turn, seen from the console: while
// a build holds the turn, the output it writes is also kept for that run, and when it lets go its
// run_results.json is read (the turn is held until then, so no other build has replaced it).
// Builds take the turn one at a time, so one buffer serves.
type runCapture struct {
	out    io.Writer     // the console log file
	turn   dbtrun.Locker // the warehouse's turn
	newest func(context.Context) (time.Time, bool)
	loaded func() int64 // rows loaded into RAW so far
	target string       // dbt's target directory

	mu       sync.Mutex
	building *logTail
	finished []capturedRun // by release; recordDbtRun takes them by invocation id
}

// capturedRun is what the capture kept of one build until its result is recorded.
type capturedRun struct {
	invocation string
	started    time.Time
	turn       time.Duration // waited for the warehouse turn before started
	results    []byte
	log        string
	cut        bool
	newest     time.Time // the newest commit in RAW as the build started
	hasNewest  bool
	loaded     int64 // rows loaded into RAW as the build started
}

func (c *runCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.building != nil {
		c.building.Write(p)
	}
	c.mu.Unlock()
	return c.out.Write(p)
}

func (c *runCapture) Acquire(ctx context.Context) (func(), error) {
	// Before the snapshot: loads after it make gold only fresher than these say.
	newest, ok := c.newest(ctx)
	loaded := c.loaded()
	asked := time.Now()
	release, err := c.turn.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	turn := started.Sub(asked)
	c.mu.Lock()
	c.building = &logTail{max: maxRunLog}
	c.mu.Unlock()
	return func() {
		results, _ := os.ReadFile(filepath.Join(c.target, "run_results.json"))
		var meta struct {
			Metadata struct {
				InvocationID string `json:"invocation_id"`
			} `json:"metadata"`
		}
		json.Unmarshal(results, &meta)
		c.mu.Lock()
		log, cut := c.building.String()
		c.building = nil
		c.finished = append(c.finished, capturedRun{invocation: meta.Metadata.InvocationID, started: started, turn: turn, results: results,
			log: log, cut: cut, newest: newest, hasNewest: ok, loaded: loaded})
		if len(c.finished) > 8 { // results nobody recorded (a build whose invocation failed early)
			c.finished = c.finished[1:]
		}
		c.mu.Unlock()
		release()
	}, nil
}

// take returns the captured build of invocation id (or, for a build that wrote no results, the
// oldest without one).
func (c *runCapture) take(id string) (capturedRun, bool) {
	if c == nil { // a dbt-runner built without the capture (a test's)
		return capturedRun{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.finished {
		if r.invocation == id {
			c.finished = append(c.finished[:i], c.finished[i+1:]...)
			return r, true
		}
	}
	return capturedRun{}, false
}

// maxRunLog is how much of one build's console output a run keeps: its first and last halves.
const maxRunLog = 256 << 10

// logTail keeps the first and the last max/2 bytes written to it.
type logTail struct {
	max        int
	head, tail []byte
	cut        bool
}

func (t *logTail) Write(p []byte) {
	if room := t.max/2 - len(t.head); room > 0 {
		n := min(room, len(p))
		t.head, p = append(t.head, p[:n]...), p[n:]
	}
	if len(p) == 0 {
		return
	}
	t.tail = append(t.tail, p...)
	if over := len(t.tail) - t.max/2; over > 0 {
		t.tail, t.cut = append(t.tail[:0], t.tail[over:]...), true
	}
}

func (t *logTail) String() (string, bool) {
	if t.cut {
		return string(t.head) + "\n… (cut: the console keeps the start and end of a build's output) …\n" + string(t.tail), true
	}
	return string(t.head) + string(t.tail), false
}

// runNodes reads each node's outcome from dbt's run_results.json.
func runNodes(results []byte) ([]console.RunNode, *int64, error) {
	var rr struct {
		Results []struct {
			UniqueID      string  `json:"unique_id"`
			Status        string  `json:"status"`
			ExecutionTime float64 `json:"execution_time"`
			Message       string  `json:"message"`
			Failures      *int64  `json:"failures"`
			Timing        []struct {
				Name        string     `json:"name"`
				StartedAt   *time.Time `json:"started_at"`
				CompletedAt *time.Time `json:"completed_at"`
			} `json:"timing"`
			AdapterResponse struct {
				RowsAffected *int64 `json:"rows_affected"`
			} `json:"adapter_response"`
		} `json:"results"`
	}
	if err := json.Unmarshal(results, &rr); err != nil {
		return nil, nil, fmt.Errorf("dbt run_results: %w", err)
	}
	nodes := make([]console.RunNode, 0, len(rr.Results))
	var affected *int64
	for _, r := range rr.Results {
		kind, _, _ := strings.Cut(r.UniqueID, ".")
		n := console.RunNode{ID: r.UniqueID, Kind: kind, Status: r.Status, Seconds: r.ExecutionTime,
			RowsAffected: r.AdapterResponse.RowsAffected, Failures: r.Failures, Message: r.Message}
		for _, t := range r.Timing {
			if t.Name == "execute" {
				n.Started, n.Completed = t.StartedAt, t.CompletedAt
			}
		}
		if kind == "model" && n.RowsAffected != nil {
			affected = cmp.Or(affected, new(int64))
			*affected += *n.RowsAffected
		}
		nodes = append(nodes, n)
	}
	return nodes, affected, nil
}

// recordDbtRun returns what keeps a dbt build of trigger ("schedule" or "loads"): its summary
// and detail in the run log, its summary in the status (the last 20), its results in the
// lineage view.
func (s *Stack) recordDbtRun(trigger string) func([]byte, error) {
	return func(out []byte, err error) {
		var sum dbtrun.Summary
		json.Unmarshal(out, &sum)
		ended := time.Now().UTC()
		run := console.Run{Started: ended.Add(-time.Duration(sum.WallSeconds * float64(time.Second))), Ended: ended, Trigger: trigger,
			Selector: sum.Selector, OK: err == nil, Models: sum.ModelsBuilt, ModelsFailed: sum.ModelsFailed, ModelsSkipped: sum.ModelsSkipped,
			TestsPassed: sum.TestsPassed, TestsFailed: sum.TestsFailed, TestsSkipped: sum.TestsSkipped, Seconds: sum.WallSeconds}
		detail := console.RunDetail{Nodes: []console.RunNode{}}
		if err != nil {
			run.Error = err.Error()
		}
		if c := sum.Cut; c != nil {
			run.Cut = &console.Cut{LSN: c.LSN, CommitTime: c.CommitTime, LagSeconds: c.LagSeconds}
		}
		if c, ok := s.runs.take(sum.InvocationID); ok {
			run.Started, run.TurnSeconds, detail.Log, detail.LogCut = c.started.UTC(), c.turn.Seconds(), c.log, c.cut
			if nodes, affected, err := runNodes(c.results); err == nil {
				detail.Nodes, run.RowsAffected = nodes, affected
			}
			if c.hasNewest && err == nil {
				lag := ended.Sub(c.newest).Seconds()
				run.GoldLagSeconds = &lag
			}
			if err == nil {
				s.publishedRows.Store(max(s.publishedRows.Load(), c.loaded))
			}
		}
		s.mergeRunResults()
		s.keepRun(run)
		s.recorder.add(runlog.Runs, run, detail)
	}
}

// recordDbtBuild records a build's summary as recordDbtRun records an invocation's result.
func (s *Stack) recordDbtBuild(trigger string) func(dbtrun.Summary, error) {
	record := s.recordDbtRun(trigger)
	return func(sum dbtrun.Summary, err error) {
		out, _ := json.Marshal(sum)
		record(out, err)
	}
}

// keepRun puts a run first in the status's last 20.
func (s *Stack) keepRun(r console.Run) {
	sum := console.DbtRun{At: r.Ended, OK: r.OK, Models: r.Models, TestsPassed: r.TestsPassed, TestsFailed: r.TestsFailed, Seconds: r.Seconds, TurnSeconds: r.TurnSeconds, Select: r.Selector, Cut: r.Cut}
	if r.Error != "" {
		sum.Failures = []string{r.Error}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dbtRuns = append([]console.DbtRun{sum}, s.dbtRuns...)
	if len(s.dbtRuns) > 20 {
		s.dbtRuns = s.dbtRuns[:20]
	}
}

// openRunLog opens the run log and takes the last 20 runs into the status, as they were before
// the stack stopped.
func (s *Stack) openRunLog() error {
	l, err := runlog.Open(RunLogPath(s.cfg.StateDir))
	if err != nil {
		return err
	}
	s.runLog, s.recorder = l, newRecorder(l, s.log)
	page, err := l.Page(runlog.Runs, 0, 20)
	if err != nil {
		return err
	}
	for i := len(page) - 1; i >= 0; i-- {
		var r console.Run
		if json.Unmarshal(page[i].Value, &r) == nil {
			s.keepRun(r)
		}
	}
	return nil
}

// newestCommit is the newest commit time in RAW, for a build's gold lag; unknown (false) when
// RAW is empty or does not answer within the status's short deadline.
func (s *Stack) newestCommit(ctx context.Context) (time.Time, bool) {
	if s.status == nil {
		return time.Time{}, false
	}
	var parts []string
	for _, t := range capturedTables {
		parts = append(parts, "SELECT max(commit_ts_us) AS c FROM raw."+t)
	}
	rows, err := s.status.query(ctx, "SELECT max(c) FROM ("+strings.Join(parts, " UNION ALL ")+")")
	if err != nil || len(rows) == 0 {
		return time.Time{}, false
	}
	us, err := strconv.ParseInt(rows[0][0], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(us), true
}

// sample takes the charts' sample every interval until ctx ends.
func (s *Stack) sample(ctx context.Context, every time.Duration) {
	for {
		s.samples.Add(console.Sample{At: time.Now().UTC(), LagBytes: s.capture.LagBytes(), LagSeconds: s.capture.Lag().Seconds(),
			Captured: s.capture.Events.Load(), Landed: s.landing.Stats().Records, Loaded: s.loader.Metrics().RowsLoaded,
			Published: s.publishedRows.Load()})
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// charts is the charts' last hour: the samples, commit-to-RAW freshness from the status, and each
// build's gold lag from the run log.
func (s *Stack) charts(ctx context.Context) console.ChartData {
	d := console.ChartData{Samples: s.samples.All(), RawFreshness: s.status.get(ctx).Freshness}
	page, _ := s.runLog.Page(runlog.Runs, 0, 240)
	since := time.Now().Add(-time.Hour)
	for i := len(page) - 1; i >= 0; i-- {
		var r console.Run
		if json.Unmarshal(page[i].Value, &r) == nil && r.Ended.After(since) && r.GoldLagSeconds != nil {
			d.Gold = append(d.Gold, console.GoldPoint{At: r.Ended, LagSeconds: *r.GoldLagSeconds})
		}
	}
	return d
}

// stackDLQ is the DLQ view's reader of the dlq/ objects.
type stackDLQ struct{ s *Stack }

func (d stackDLQ) List(ctx context.Context, after string, limit int) ([]console.DLQItem, error) {
	ctx, cancel := context.WithCancel(ctx) // stops the listing after limit
	defer cancel()
	items := []console.DLQItem{}
	// V1's marker, which S3 and the local S3 (gofakes3) both honour; gofakes3 ignores V2's
	// start-after and would list from the start.
	opts := minio.ListObjectsOptions{Prefix: "dlq/", Recursive: true, StartAfter: after, MaxKeys: limit, UseV1: true}
	for obj := range d.s.s3.ListObjects(ctx, d.s.cfg.Bucket, opts) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list dlq/ after %q: %w", after, obj.Err)
		}
		if obj.Key <= after { // a listing that ignored the cursor must not loop the view
			return nil, fmt.Errorf("list dlq/ after %q: the S3 listed %q again", after, obj.Key)
		}
		e, err := d.s.readDLQ(ctx, obj.Key)
		if err != nil {
			return nil, err
		}
		items = append(items, console.DLQItem{Key: obj.Key, Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Reason: e.Reason, Bytes: obj.Size})
		if len(items) == limit {
			break
		}
	}
	return items, nil
}

func (d stackDLQ) Read(ctx context.Context, key string) (json.RawMessage, error) {
	if !strings.HasPrefix(key, "dlq/") || strings.Contains(key, "..") {
		return nil, fmt.Errorf("%q: %w", key, console.ErrNotDLQ)
	}
	e, err := d.s.readDLQ(ctx, key)
	if err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// runsHandlers are the console's runs, loads, landing, DLQ and chart endpoints.
func (s *Stack) runsHandlers() map[string]http.Handler {
	return console.RunsHandlers(s.token, &s.codes, s.runLog, stackDLQ{s}, s.charts)
}

// ledgerLoads hands each load of the warehouse's ledger after since and up to until to each,
// oldest first.
type ledgerLoads func(ctx context.Context, since, until time.Time, each func(console.Load)) error

// backfillMargin is how far before the newest recorded load the ledger is read again at start:
// loads commit concurrently, so a load whose record a crash lost can be a little older than one
// whose record was kept.
const backfillMargin = 2 * time.Minute

// backfillLoads records, once at start, the loads the warehouse's ledger holds and the run log
// lacks: every load on a run log newer than the warehouse (an upgrade, a deleted file), and the
// records a crash took from the recorder's queue (the newest ones). Loads within backfillMargin
// of the newest record are matched by object key, and loads after until (this process's own,
// which it records as they happen) are left, so none is recorded twice.
func (s *Stack) backfillLoads(ctx context.Context, until time.Time, ledger ledgerLoads) error {
	var since time.Time
	known := map[string]bool{}
	for before := uint64(0); ; {
		page, err := s.runLog.Page(runlog.Loads, before, 500)
		if err != nil || len(page) == 0 {
			break
		}
		done := false
		for _, e := range page {
			var l console.Load
			json.Unmarshal(e.Value, &l)
			if since.IsZero() {
				since = l.LoadedAt.Add(-backfillMargin)
			}
			if l.LoadedAt.Before(since) {
				done = true
				break
			}
			known[l.Key] = true
		}
		if done {
			break
		}
		before = page[len(page)-1].Key
	}
	n := 0
	err := ledger(ctx, since, until, func(l console.Load) {
		if known[l.Key] {
			return
		}
		if k, err := bronze.ParseKey(l.Key); err == nil {
			l.Topic, l.Partition, l.First, l.Last = k.Topic, k.Partition, k.First, k.Last
		}
		s.recorder.add(runlog.Loads, l, nil)
		n++
	})
	if n > 0 {
		s.log.Info("console: loads recorded from the warehouse's ledger", "loads", n, "since", since)
	}
	return err
}

// ledgerSince reads the warehouse's load ledger (RAW answers while dbt builds).
func (s *Stack) ledgerSince(ctx context.Context, since, until time.Time, each func(console.Load)) error {
	return s.wh.QueryRows(ctx, `SELECT object_key, source_table, row_count, loaded_at FROM `+duckdb.Schema+`.`+warehouse.LedgerTable+`
		WHERE loaded_at > ? AND loaded_at <= ? ORDER BY loaded_at, object_key`, []any{since, until}, func(rows *sql.Rows) error {
		for rows.Next() {
			var l console.Load
			if err := rows.Scan(&l.Key, &l.Table, &l.Rows, &l.LoadedAt); err != nil {
				return fmt.Errorf("read the load ledger: %w", err)
			}
			l.LoadedAt = l.LoadedAt.UTC()
			each(l)
		}
		return nil
	})
}
