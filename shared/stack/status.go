package stack

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/reconcile"
	"github.com/fin-orchestrator/fin-orchestrator/shared/s3local"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// statusCache gathers the console's status every few seconds in the background, so the page
// never waits on the warehouse (queries of the models wait while dbt builds them).
type statusCache struct {
	s    *Stack
	mu   sync.Mutex
	last console.Status
	// reconciled is the last comparison of Postgres with the warehouse, made apart every
	// reconcileEvery.
	reconciled *console.Reconcile
	// counts keeps the warehouse's counts between gathers, fresh the freshness chart (gather's
	// goroutine alone).
	counts rawCounts
	fresh  freshnessChart
}

// reconcileEvery is how often, at most, the console compares Postgres with the warehouse: not at
// the status's pace, and never more than a tenth of the time (a pass of 3 s waits 30 s), so a
// slow pass (the first one reads every row) does not take the stack's CPU.
const reconcileEvery = 20 * time.Second

func newStatusCache(s *Stack) *statusCache {
	return &statusCache{s: s, last: console.Status{Time: time.Now()}}
}

func (c *statusCache) get(context.Context) console.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *statusCache) run(ctx context.Context) {
	go c.reconcile(ctx)
	chores := newChoreThread(ctx)
	for {
		var st console.Status
		start := time.Now()
		chores.run(func() { st = c.gather(ctx) })
		c.s.log.Debug("status gathered", "took_s", time.Since(start).Seconds())
		c.mu.Lock()
		c.last = st
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
	}
}

// capturedTables are the tables the stack counts, as the bronze contract names them.
var capturedTables = bronze.SourceTables()

// gather builds the console status afresh from each part of the stack, in the order the console
// lists them.
func (c *statusCache) gather(ctx context.Context) console.Status {
	prev := c.get(ctx)
	st := console.Status{Time: time.Now()}
	pgCounts, pgErr := c.postgresCounts(ctx)
	st.Components = append(st.Components, component("postgres", pgErr, "system of record"))
	c.addCapture(&st)
	st.Components = append(st.Components, c.s.s3Component())
	c.addLandingAndLoads(&st)
	st.DLQ = c.s.dlq.get(ctx, time.Now(), prev.DLQ, c.s.listDLQ)
	c.addWarehouse(ctx, &st, prev, pgCounts)
	if r, comp := c.reconcileComponent(); r != nil {
		st.Reconcile = r
		st.Components = append(st.Components, *comp)
	}
	c.addDbtAndInvocations(&st)
	return st
}

// postgresCounts counts the rows of each captured table.
func (c *statusCache) postgresCounts(ctx context.Context) (map[string]int64, error) {
	counts := map[string]int64{}
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, t := range capturedTables {
		var n int64
		if err := c.s.cfg.Pool.QueryRow(qctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			return counts, err
		}
		counts[t] = n
	}
	return counts, nil
}

func (c *statusCache) addCapture(st *console.Status) {
	s := c.s
	m := &s.capture
	st.Replication = &console.Replication{Slot: s.cfg.Slot, LagBytes: m.LagBytes(), LagSeconds: m.Lag().Seconds(),
		Snapshotting: m.Snapshotting.Load()}
	s.mu.Lock()
	lastErr := s.partErr["capture"]
	s.mu.Unlock()
	capDetail := fmt.Sprintf("%d events, confirmed LSN %X/%X", m.Events.Load(), m.ConfirmedLSN.Load()>>32, uint32(m.ConfirmedLSN.Load()))
	if lastErr != "" {
		capDetail += "; last failure: " + lastErr
	}
	st.Components = append(st.Components, console.Component{Name: "capture", OK: m.ConfirmedLSN.Load() > 0, Detail: capDetail})
}

// s3Component says where the lake is and, for the local S3, which file holds the key pair it
// accepts and its key id: never the secret.
func (s *Stack) s3Component() console.Component {
	if s.cfg.S3Endpoint != "" {
		return console.Component{Name: "s3", OK: true, Detail: fmt.Sprintf("%s (S3_ENDPOINT), bucket %s", s.S3URL, s.cfg.Bucket)}
	}
	return console.Component{Name: "s3", OK: true, Detail: fmt.Sprintf("%s, bucket %s; signed requests only, credentials %s (profile %s, key id %s)",
		s.S3URL, s.cfg.Bucket, s3local.CredentialsPath(s.cfg.StateDir), s3local.Profile, s.s3Creds.AccessKeyID)}
}

func (c *statusCache) addLandingAndLoads(st *console.Status) {
	ls := c.s.landing.Stats()
	lm := c.s.loader.Metrics()
	st.Components = append(st.Components,
		console.Component{Name: "landing", OK: true, Detail: fmt.Sprintf("%d records in %d objects, %d to the DLQ", ls.Records, ls.Objects, ls.Poison)},
		console.Component{Name: "loader", OK: lm.FailureCount() == 0, Detail: fmt.Sprintf("%d objects, %d rows loaded, %d failed", lm.ObjectsLoaded, lm.RowsLoaded, lm.FailureCount())})
}

// addWarehouse adds counts of current rows beside Postgres's, recent loads and freshness. While
// dbt builds the models, queries that read them time out; the previous figures stay.
func (c *statusCache) addWarehouse(ctx context.Context, st *console.Status, prev console.Status, pgCounts map[string]int64) {
	s := c.s
	whCounts, whErr := c.warehouseCounts(ctx)
	for _, t := range capturedTables {
		tc := console.TableCount{Table: t, Postgres: pgCounts[t], Warehouse: whCounts[t]}
		if whErr != nil {
			for _, p := range prev.Tables {
				if p.Table == t {
					tc.Warehouse = p.Warehouse
				}
			}
		}
		st.Tables = append(st.Tables, tc)
	}
	detail := "DuckDB " + duckdb.RawPath(s.cfg.WarehousePath) + " (RAW), " + s.cfg.WarehousePath + " (models)"
	if whErr != nil {
		detail = "unreachable: " + whErr.Error()
	}
	st.Components = append(st.Components, console.Component{Name: "warehouse", OK: whErr == nil, Detail: detail})
	if st.Loads, st.Freshness = prev.Loads, prev.Freshness; whErr == nil {
		if loads, err := c.recentLoads(ctx); err == nil {
			st.Loads = loads
		}
		if fr, err := c.fresh.update(ctx, c.query, time.Now()); err == nil {
			st.Freshness = fr
		}
	}
}

func (c *statusCache) addDbtAndInvocations(st *console.Status) {
	s := c.s
	s.mu.Lock()
	st.DbtRuns = append([]console.DbtRun(nil), s.dbtRuns...)
	failures := s.failures
	s.mu.Unlock()
	dbtOK, dbtDetail := true, "no run yet"
	if len(st.DbtRuns) > 0 {
		r := st.DbtRuns[0]
		dbtOK = r.OK
		dbtDetail = fmt.Sprintf("last build %s: %d models, %d tests passed, %d failed", r.At.Format(time.TimeOnly), r.Models, r.TestsPassed, r.TestsFailed)
	}
	st.Components = append(st.Components, console.Component{Name: "dbt", OK: dbtOK, Detail: dbtDetail})
	if failures > 0 {
		st.Components = append(st.Components, console.Component{Name: "invocations", OK: false,
			Detail: fmt.Sprintf("%d failed after retries, kept in %s/failed-invocations", failures, s.cfg.StateDir)})
	}
}

// reconcile judges, pass after pass, what `fin reconcile` judges: whether Postgres and the
// warehouse agree, lag, differ, or the warehouse lost changes the capture delivered.
func (c *statusCache) reconcile(ctx context.Context) {
	// A pass walks both sides in key order and keeps earlier passes' versions on disk, so its
	// memory does not follow the tables; the folder is this stack's alone, emptied of a crashed
	// run's passes.
	dir := filepath.Join(c.s.cfg.StateDir, "reconcile")
	if err := errors.Join(os.RemoveAll(dir), os.MkdirAll(dir, 0o700)); err != nil {
		c.mu.Lock()
		c.reconciled = &console.Reconcile{At: time.Now(), Verdict: "unknown", Summary: "comparison failed: " + err.Error(), Error: err.Error()}
		c.mu.Unlock()
		return
	}
	r := reconcile.New(c.s.cfg.Pool, duckdb.RAW{Warehouse: c.s.wh}, reconcile.Options{Slot: c.s.cfg.Slot, Dir: dir,
		Snapshotting: func(context.Context) (bool, error) { return c.s.capture.Snapshotting.Load(), nil }})
	defer r.Close()
	pause := reconcileEvery
	chores := newChoreThread(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		start := time.Now()
		chores.run(func() { c.reconcileOnce(ctx, r) })
		pause = max(reconcileEvery, 10*time.Since(start))
	}
}

// reconcileOnce makes one pass and keeps its verdict for the status: a pass of what changed on
// either side, what disagreed, and a share of the rest in turn, so its cost follows the changes
// rather than the tables (`fin reconcile` compares everything).
func (c *statusCache) reconcileOnce(ctx context.Context, r *reconcile.Reconciler) {
	start := time.Now()
	rep, err := r.PassChanged(ctx)
	// When a pass ran and how long it took, for lining its memory up with RSS samples.
	c.s.log.Debug("reconcile pass", "took_s", time.Since(start).Seconds(), "partial", rep.Partial, "err", err)
	if err != nil && ctx.Err() != nil {
		return
	}
	out := &console.Reconcile{At: time.Now(), Verdict: rep.Verdict(), Summary: rep.Summary(),
		Lost: len(rep.Lost), Lag: rep.Lagging(), Differences: len(rep.Differences)}
	if err != nil {
		out.Verdict, out.Summary, out.Error = "unknown", "comparison failed: "+err.Error(), err.Error()
	}
	for _, lines := range [][]string{rep.Differences, rep.Lost, rep.Lag} {
		out.Examples = append(out.Examples, lines[:min(3, len(lines))]...)
	}
	c.mu.Lock()
	c.reconciled = out
	c.mu.Unlock()
}

// reconcileComponent is the last verdict as a part of the pipeline's health: lag is the pipeline
// working, lost changes and differences are not.
func (c *statusCache) reconcileComponent() (*console.Reconcile, *console.Component) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reconciled
	if r == nil {
		return nil, nil
	}
	return r, &console.Component{Name: "reconcile", OK: r.OK(), Detail: r.Verdict + ": " + r.Summary}
}

func component(name string, err error, ok string) console.Component {
	if err != nil {
		return console.Component{Name: name, OK: false, Detail: err.Error()}
	}
	return console.Component{Name: name, OK: true, Detail: ok}
}

// query runs a query of RAW (never of the models: QueryRAW) with a short deadline and returns
// its CSV rows without header.
func (c *statusCache) query(ctx context.Context, q string) ([][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := c.s.wh.QueryRAW(ctx, q, &buf); err != nil {
		return nil, err
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return recs[1:], nil
}

// warehouseCounts counts each table's current rows in the warehouse, from what the loads since
// the last count added (rawcounts.go).
func (c *statusCache) warehouseCounts(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range capturedTables {
		n, err := c.counts.count(ctx, c.query, t)
		if err != nil {
			return nil, err
		}
		out[t] = n
	}
	return out, nil
}

func (c *statusCache) recentLoads(ctx context.Context) ([]console.Load, error) {
	rows, err := c.query(ctx, `SELECT object_key, source_table, row_count, epoch_ms(loaded_at) FROM raw._load_ledger ORDER BY loaded_at DESC LIMIT 8`)
	if err != nil {
		return nil, err
	}
	var out []console.Load
	for _, r := range rows {
		n, _ := strconv.ParseInt(r[2], 10, 64)
		ms, _ := strconv.ParseInt(r[3], 10, 64)
		out = append(out, console.Load{Key: r[0], Table: r[1], Rows: n, LoadedAt: time.UnixMilli(ms)})
	}
	return out, nil
}
