// Package reconcile compares the system of record (Postgres) with the warehouse's RAW change log:
// every column of every captured table at equal versions, and the money per currency. It tells
// three kinds of disagreement apart:
//
//   - a difference: a row at the same version with other values, or a version Postgres never had;
//   - lost: a change the capture has delivered (it lies below the replication slot's confirmed
//     position) that the warehouse still lacks a grace period later. Nothing upstream will send it
//     again: the remedy is a new snapshot (`fin snapshot`);
//   - lag: a change the capture has not confirmed yet. The slot still holds it, so it will come;
//     Compare waits for it, up to a limit.
//
// Whether a change lies below the slot's confirmed position is known without clocks: each pass
// reads Postgres in a repeatable-read transaction and, inside it, the WAL insert position. Every
// row that snapshot sees was committed before that position, so once the slot's
// confirmed_flush_lsn has passed it, the capture has delivered every version the snapshot saw
// (docs/runbook.md, "Reconciling").
package reconcile

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// Warehouse runs a query and writes its result as CSV with a header (the local DuckDB, or the
// running stack's SQL endpoint).
type Warehouse interface {
	Query(ctx context.Context, query string, out io.Writer) error
}

// Options tune a Reconciler; zero values take the defaults.
type Options struct {
	// Slot is the capture's replication slot (default fin_capture).
	Slot string
	// Publication names the captured tables (default fin_cdc).
	Publication string
	// Grace is how long the warehouse may take to hold a change after the capture confirmed it
	// (landing, the S3 event, the load; default 30 s), on top of how far behind its commits the
	// warehouse has been loading lately. A change still absent after that is lost.
	Grace time.Duration
	// ClockMargin guards the one judgement that needs clocks, a delete the warehouse never got: the
	// warehouse's version must have been committed this long before the reference snapshot began
	// (default 10 s).
	ClockMargin time.Duration
	// Snapshotting, when set, says whether the capture is re-reading tables (an incremental
	// snapshot runs): rows it has not re-read yet are then lag, not lost.
	Snapshotting func(ctx context.Context) (bool, error)
	// Dir is where passes are kept for later ones, a folder of files per pass (default the
	// system's temporary folder); Close removes them.
	Dir string
	// Now is the clock (default time.Now); tests inject theirs.
	Now func() time.Time
	// Sweep is how many keys of each table a pass of what changed (PassChanged) compares beyond
	// the changed ones, in turn, so that every key is compared again once in a while (default
	// 20,000). A compared key costs the warehouse one current row however many versions it has
	// (currentRowsWhereSQL), so this and the changed keys bound what a pass holds.
	Sweep int
}

func (o Options) withDefaults() Options {
	if o.Slot == "" {
		o.Slot = "fin_capture"
	}
	if o.Publication == "" {
		o.Publication = "fin_cdc"
	}
	if o.Grace == 0 {
		o.Grace = 30 * time.Second
	}
	if o.ClockMargin == 0 {
		o.ClockMargin = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dir == "" {
		o.Dir = os.TempDir()
	}
	if o.Sweep <= 0 {
		o.Sweep = 20_000
	}
	return o
}

// Reconciler compares the two sides pass after pass, remembering what earlier passes saw in
// Postgres: a change is judged lost against an earlier snapshot the capture has delivered.
type Reconciler struct {
	pool *pgxpool.Pool
	wh   Warehouse
	opt  Options
	// history holds earlier passes' versions, oldest first: the reference, and the ones after it
	// (see the end of Pass).
	history []*pass
	// since is where the last pass left off, for a pass of what changed (nil: none yet).
	since *since
}

// pass is what one pass saw in Postgres.
type pass struct {
	lsn     uint64    // WAL insert position read inside the snapshot: every visible commit ends at or below it
	began   time.Time // the snapshot transaction's start, Postgres's clock
	dir     string    // its versions, a file per table in key order (history.go)
	crossed time.Time // when the slot was first seen at or past lsn (zero: not yet)
	partial bool      // a pass of what changed: it kept the versions of the keys it compared only
}

// New returns a Reconciler of Postgres (pool) against the warehouse.
func New(pool *pgxpool.Pool, wh Warehouse, opt Options) *Reconciler {
	return &Reconciler{pool: pool, wh: wh, opt: opt.withDefaults()}
}

// Compare runs passes until the two sides agree, a difference or a lost change is found, or wait
// has passed, and returns the last report.
func (r *Reconciler) Compare(ctx context.Context, wait time.Duration) (Report, error) {
	deadline := r.opt.Now().Add(wait)
	for {
		rep, err := r.Pass(ctx)
		if err != nil {
			return rep, err
		}
		if rep.OK() || len(rep.Differences) > 0 || len(rep.Lost) > 0 || !r.opt.Now().Before(deadline) {
			rep.Waited = wait
			return rep, nil
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Pass reads the slot, the warehouse and Postgres once, in that order, and judges every key.
func (r *Reconciler) Pass(ctx context.Context) (Report, error) {
	return r.pass(ctx, r.since != nil, false)
}

// PassChanged judges what Pass judges, reading only the keys that changed on either side since
// the last pass, those that disagreed then, and the next Sweep keys of each table in turn
// (changed.go); the first pass, or one with too many keys to name, reads every key. Its report
// has no counts or money: it did not read the tables whole.
func (r *Reconciler) PassChanged(ctx context.Context) (Report, error) {
	return r.pass(ctx, true, r.since != nil)
}

// pass makes a pass of what changed, or a full one; track keeps where it left off.
func (r *Reconciler) pass(ctx context.Context, track, changed bool) (Report, error) {
	slot, err := readSlot(ctx, r.pool, r.opt.Slot)
	if err != nil {
		return Report{}, err
	}
	// The slot is read before the warehouse: whatever it had confirmed by now had landed before
	// the warehouse is read.
	now := r.opt.Now()
	if slot.Exists {
		for _, p := range r.history {
			if p.crossed.IsZero() && slot.confirmed >= p.lsn {
				p.crossed = now
			}
		}
	}
	tables, skipped, err := capturedTables(ctx, r.pool, r.opt.Publication)
	if err != nil {
		return Report{}, err
	}
	if tables, skipped, err = loadedTables(ctx, r.wh, tables, skipped); err != nil {
		return Report{}, err
	}
	delay, err := loadDelay(ctx, r.wh, tables)
	if err != nil {
		return Report{}, err
	}
	ref := r.reference(now.Add(-r.opt.Grace - delay))
	snapshotting := false
	if r.opt.Snapshotting != nil {
		if snapshotting, err = r.opt.Snapshotting(ctx); err != nil {
			return Report{}, fmt.Errorf("reconcile: is the capture snapshotting: %w", err)
		}
	}
	// What this pass compares is chosen before the warehouse is read (changed.go).
	sel, next, err := r.choose(ctx, tables, track, changed)
	if err != nil {
		return Report{}, err
	}
	c := newComparison(ref, judge{slotLost: slot.Status == "lost", snapshotting: snapshotting})
	// Remember this snapshot only when none waits for the slot and the last one was passed half a
	// grace ago: that keeps at most about three (the reference, one within its grace, one waiting),
	// whatever the pace of passes, at the cost of a lost verdict up to half a grace later.
	n := len(r.history)
	keep := ""
	if n == 0 || (!r.history[n-1].crossed.IsZero() && !r.history[n-1].crossed.After(now.Add(-r.opt.Grace/2))) {
		if keep, err = os.MkdirTemp(r.opt.Dir, "fin-reconcile-"); err != nil {
			return Report{}, fmt.Errorf("reconcile: keep this pass: %w", err)
		}
	}
	cur, err := r.compare(ctx, c, tables, keep, sel)
	if err != nil {
		os.RemoveAll(keep)
		return Report{}, err
	}
	if keep != "" {
		r.history = append(r.history, &pass{lsn: cur.lsn, began: cur.began, dir: keep, partial: sel != nil})
	}
	r.since = next.after(cur, c.disagree, sel != nil)
	rep := c.report()
	rep.Slot, rep.WAL, rep.At, rep.LoadDelay, rep.Skipped = slot, pglogrepl.LSN(cur.lsn).String(), now, delay, skipped
	if sel != nil {
		rep.Tables, rep.Money, rep.Partial = nil, nil, true
	}
	return rep, nil
}

// reference is the latest earlier pass the slot passed by cutoff (nil: none yet); the passes
// before it are forgotten.
func (r *Reconciler) reference(cutoff time.Time) *reference {
	var ref *reference
	keep := 0
	for i, h := range r.history {
		if !h.crossed.IsZero() && !h.crossed.After(cutoff) {
			dir := h.dir
			ref = &reference{began: h.began, margin: r.opt.ClockMargin, partial: h.partial,
				open: func(table string) (versionCursor, func(), error) { return openVersions(dir, table) }}
			keep = i
		}
	}
	for _, h := range r.history[:keep] {
		os.RemoveAll(h.dir)
	}
	r.history = r.history[keep:]
	return ref
}

// compare reads the warehouse, then Postgres, and walks each table's two sides (and the
// reference's versions) in key order together; keep, when set, is the folder this pass's
// versions go to.
func (r *Reconciler) compare(ctx context.Context, c *comparison, tables []table, keep string, sel selection) (position, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wh, closeWarehouse, err := openWarehouse(ctx, r.wh, tables, sel)
	if err != nil {
		return position{}, err
	}
	defer closeWarehouse()
	var cur position
	err = postgresSnapshot(ctx, r.pool, func(tx pgx.Tx, pos position) error {
		cur = pos
		for _, t := range tables {
			if err := r.compareTable(ctx, c, tx, t, wh[t.name], keep, sel[t.name]); err != nil {
				return err
			}
		}
		return nil
	})
	return cur, err
}

// compareTable walks one table's sides, writing its versions into keep when set.
func (r *Reconciler) compareTable(ctx context.Context, c *comparison, tx pgx.Tx, t table, wh rowCursor, keep string, keys *keySet) error {
	pg, err := readTable(ctx, tx, t, keys)
	if err != nil {
		return err
	}
	defer pg.close()
	var ref versionCursor
	if c.ref != nil {
		cursor, done, err := c.ref.open(t.name)
		if err != nil {
			return err
		}
		defer done()
		ref = cursor
	}
	if keep == "" {
		return c.compareTable(t, pg, wh, ref, nil)
	}
	vw, err := createVersions(keep, t.name)
	if err != nil {
		return err
	}
	if err := c.compareTable(t, pg, wh, ref, vw.add); err != nil {
		vw.close()
		return err
	}
	return vw.close()
}

// Close forgets the passes kept on disk.
func (r *Reconciler) Close() {
	for _, h := range r.history {
		os.RemoveAll(h.dir)
	}
	r.history = nil
}

// reference is an earlier pass whose every version the capture delivered at least a grace ago.
type reference struct {
	began   time.Time
	margin  time.Duration
	partial bool // it compared only some keys (PassChanged): one it lacks is unknown, not absent
	// open reads its versions of a table in key order; done releases them.
	open func(table string) (c versionCursor, done func(), err error)
}

// CurrentRowsSQL selects columns from the rows raw.<table> says the table holds now: the latest
// change event of each key by log position, unless it is a delete, or comes before the opening
// position of a completed incremental snapshot of the table (raw.snapshot_windows, whose rows
// are all loaded): a key without an event inside such a window was deleted before it, a delete
// that another destination consumed from the slot (docs/capture.md; the history ends the same
// keys, docs/dbt.md).
func CurrentRowsSQL(table, columns string) string {
	return currentRowsSQL(table, columns, true)
}

// currentRowsSQL is CurrentRowsSQL, without the windows for a warehouse that has no
// raw.snapshot_windows (loaded before the capture wrote windows).
func currentRowsSQL(table, columns string, windows bool) string {
	return currentRowsWhereSQL(table, columns, windows, "true")
}

// currentRowsWhereSQL is currentRowsSQL of the keys the condition where, on raw.<table>'s key
// column, selects: the aggregate then reads their events alone.
//
// Each key's current row is picked by an aggregate over narrow columns (its row id, log position
// and op: LatestSQL), and columns are read from those rows alone, found again by row id. The
// aggregate keeps one value per key however many versions the key has. A window (row_number()
// over each key's events) held every version until it ended: the console's reconcile pass names
// nearly every account each pass (a transfer updates two of 1,500) and its sweep covers whole
// tables of fewer keys than it, so every version of each was held, and the pass's memory grew
// with RAW's history; before that, the window over whole rows held every version's row image too
// (docs/benchmarks.md; TestCurrentRowsHoldOneRowPerKey, TestCurrentRowsWindowHoldsNoRowImage).
// The scan that finds those rows again yields about them alone, not every row of the table:
// DuckDB pushes the semi-join's row ids into it (their list, min/max and a Bloom filter). where is
// not repeated there: it is on json_extract_string(key, ...), which no zone map prunes, and
// repeated it changed neither what that scan yields nor the CPU time, for a few keys or
// thousands (TestOuterScanOfAFewKeysReadsTheirRowsAlone; docs/benchmarks.md).
func currentRowsWhereSQL(table, columns string, windows bool, where string) string {
	current := fmt.Sprintf(`SELECT c.rid FROM (SELECT %s AS c FROM raw.%s WHERE %s GROUP BY key) WHERE c.op <> 'd'`,
		LatestSQL("{'rid': rowid, 'op': op, 'lsn': lsn}"), table, where)
	if windows {
		current += " AND (c.lsn IS NULL OR c.lsn >= " + SnapshotBoundSQL(table) + ")"
	}
	return fmt.Sprintf("SELECT %s FROM raw.%s WHERE rowid IN (%s)", columns, table, current)
}

// LatestSQL is an aggregate of value at the latest change event of each group of RAW rows: the
// highest log position, then the highest offset, a NULL below every number (the row that
// row_number() OVER (ORDER BY lsn DESC, "offset" DESC) numbers 1, DuckDB putting NULLs last). An
// aggregate holds one value a group where a window holds every row of it.
func LatestSQL(value string) string {
	return "arg_max(" + value + `, (lsn IS NOT NULL, coalesce(lsn, 0), "offset" IS NOT NULL, coalesce("offset", 0)))`
}

// SnapshotBoundSQL is a scalar query of the log position before which raw.<table> holds no
// current row: the opening position of its latest completed incremental snapshot (0 without one).
func SnapshotBoundSQL(table string) string {
	// Captured tables are public's (RAW names them by table alone), as in dbt's history macro.
	open := `CAST(json_extract_string(w.after, '$.open_lsn') AS BIGINT)`
	return fmt.Sprintf(`(SELECT coalesce(max(%[2]s), 0) FROM raw.%[3]s AS w
		WHERE w.source_schema = 'public' AND w.source_table = '%[1]s' AND (SELECT count(DISTINCT r.key) FROM raw.%[1]s AS r
			WHERE r.op = 'r' AND r.snapshot = 'incremental' AND r.lsn BETWEEN %[2]s AND w.lsn)
			>= CAST(json_extract_string(w.after, '$.rows') AS BIGINT))`, table, open, bronze.SnapshotWindowsTable)
}
