package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// catalogOf is the database name DuckDB gives the file at path, its base name without extension:
// the RAW file's own database, and the name dbt-duckdb gives the models file (which its views
// use to name other models; the stack attaches the file under the same name).
func catalogOf(path string) string {
	return strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
}

// attachModels attaches the models file read-only, if dbt has made it yet.
func (w *Warehouse) attachModels(ctx context.Context) error {
	if w.models == "" {
		return nil
	}
	if _, err := os.Stat(w.models); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("models file: %w", err)
	}
	stmt := fmt.Sprintf("ATTACH %s AS %s (READ_ONLY)", literal(w.models), quote(catalogOf(w.models)))
	if _, err := w.db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("attach the models file %s read-only: %w%s", w.models, err, lockHint(err))
	}
	w.attached = true
	w.forgetSearchPaths()
	return nil
}

// ModelNames returns the tables and views dbt has built in the models file (none before its
// first build): the dbt-runner builds everything at once while one of the project's models is
// missing, rather than fail a build selected from loads on tests that read a missing model.
func (w *Warehouse) ModelNames(ctx context.Context) ([]string, error) {
	var names []string
	err := w.QueryRows(ctx, "SELECT DISTINCT table_name FROM information_schema.tables WHERE table_catalog = ? ORDER BY 1",
		[]any{catalogOf(w.models)}, func(rows *sql.Rows) error {
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					return err
				}
				names = append(names, n)
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list the models in %s: %w", w.models, err)
	}
	return names, nil
}

// LendModels detaches the models file, once the queries reading it are done, so dbt can write
// it; queries that need a model wait until resume attaches it again (RAW keeps answering, and
// loads go on). Call resume exactly once.
func (w *Warehouse) LendModels(ctx context.Context) (resume func(context.Context) error, err error) {
	w.lent.Lock()
	// attached changes under use as well: a reopen (use alone) reads it to attach again.
	if err := w.share(); err != nil {
		w.lent.Unlock()
		return nil, err
	}
	if w.attached {
		if _, err := w.db.ExecContext(ctx, "DETACH DATABASE "+quote(catalogOf(w.models))); err != nil {
			w.unshare()
			w.lent.Unlock()
			return nil, fmt.Errorf("detach the models file %s for dbt: %w", w.models, err)
		}
		w.attached = false
		w.forgetSearchPaths()
	}
	w.unshare()
	return func(ctx context.Context) error {
		defer w.lent.Unlock()
		if err := w.attachAgain(ctx); err != nil {
			return err
		}
		st, err := w.publish(ctx)
		if err != nil {
			return err
		}
		if w.publishing() {
			slog.Info("published the build for history reads", "took_s", st.Took.Seconds(), "rows", st.Rows, "whole", st.Whole)
		}
		return nil
	}, nil
}

// attachAgain attaches the models file after dbt's turn.
func (w *Warehouse) attachAgain(ctx context.Context) error {
	if err := w.share(); err != nil {
		return err
	}
	defer w.unshare()
	return w.attachModels(ctx)
}

// SnapshotStats is what a Snapshot spent, for the log: loads wait for all of it.
type SnapshotStats struct {
	// Prepare is the first checkpoint, beside the loads: they do not wait for it, but the build
	// that asked for the snapshot does.
	Prepare                time.Duration
	Wait, Checkpoint, Copy time.Duration // for the load in progress; to checkpoint; to copy
	Bytes                  int64         // the size of the copy
	Written                int64         // the bytes of it that differed from the previous copy
	Reopened               bool          // DuckDB was opened again, its cache dropped (no query ran)
	Reopen                 time.Duration // how long that took
	Trim                   time.Duration // handing the C heap's free pages back, after all of it
	Trimmed                bool          // whether that gave any back
}

// Snapshot writes a consistent copy of RAW to dst for dbt to read: it waits for the load in
// progress, checkpoints (so the file alone holds every committed row), brings the copy up to date
// with the file, and lets loads go on. Every load is either wholly in the copy or starts after it,
// so a load's _loaded_at is later than every row of the copy: dbt's incremental models, which take
// rows loaded after the newest they hold, see each RAW row exactly once. The copy is updated in
// place, only where it differs (RAW grows by appends and a checkpoint rewrites few blocks), found
// from checksums of the copy's blocks kept since the last snapshot (fileSync), so it costs one read
// of RAW and the writes of what changed; the caller must not let anything read dst while Snapshot
// runs (the stack holds the warehouse's turn, and dbt has closed the file after its previous
// build). When no query is running it then opens DuckDB again, which drops its cache of RAW, and
// last, with loads going on, hands the C heap's free pages back to the OS (trimCHeap).
//
// Queries run on beside it: DuckDB checkpoints beside open reads (a reader keeps the blocks it
// reads until it ends) and a reader never writes the file. Waiting for them, as it once did, let
// one slow query (a reconcile pass spilling under a tight memory_limit) hold every load, build
// and new query behind the waiting snapshot (TestSnapshotDoesNotWaitForQueries).
func (w *Warehouse) Snapshot(ctx context.Context, dst string) (SnapshotStats, error) {
	st, err := w.snapshot(ctx, dst)
	// A snapshot is the stack's regular point after a large transient of DuckDB's C++ side (the
	// checkpoint, a closed instance and the queries since the last one): the free pages that glibc's
	// arenas keep from it go back to the OS here, after loads are let go (they do not wait for it),
	// whether or not DuckDB could be reopened. Without it the arenas grew by 2 MB a minute.
	trim := time.Now()
	st.Trimmed, st.Trim = trimCHeap(), time.Since(trim)
	return st, err
}

func (w *Warehouse) snapshot(ctx context.Context, dst string) (SnapshotStats, error) {
	var st SnapshotStats
	w.snapping.Lock()
	defer w.snapping.Unlock()
	// Most of the checkpoint's work first, beside the loads, so the one that loads wait for has
	// little left to write. DuckDB refuses it while a load is writing ("other write transactions
	// active"); then the second does it all.
	if err := w.share(); err != nil {
		return st, err
	}
	prepare := time.Now()
	w.db.ExecContext(ctx, "CHECKPOINT "+w.rawCatalog())
	w.unshare()
	start := time.Now()
	st.Prepare = start.Sub(prepare)
	if err := w.take(ctx); err != nil {
		return st, err
	}
	defer w.release()
	st.Wait = time.Since(start)
	if _, err := w.db.ExecContext(ctx, "CHECKPOINT "+w.rawCatalog()); err != nil {
		return st, fmt.Errorf("snapshot RAW: checkpoint %s: %w", w.path, err)
	}
	st.Checkpoint = time.Since(start) - st.Wait
	if w.snap == nil {
		w.snap = newFileSync()
	}
	n, written, err := w.snap.sync(w.path, dst)
	if err != nil {
		return st, fmt.Errorf("snapshot RAW to %s: %w", dst, err)
	}
	st.Bytes, st.Written, st.Copy = n, written, time.Since(start)-st.Wait-st.Checkpoint
	// DuckDB keeps every block of RAW it has written at a checkpoint or read for a query in its
	// buffer pool until memory_limit presses: a long-running stack's memory followed RAW's size
	// (docs/operations.md). Everything is on disk now, and the OS's page cache holds the file
	// anyway, so when no query is running the instance is opened again, empty; when one is, the
	// last reader to leave does it (reopenIfIdle). Left to the next snapshot, a run of snapshots
	// that each met a query (a reconcile pass, the status's counts) kept the cache for minutes:
	// on a loaded machine four in a row, 7 minutes of 30-60 MB more RSS (docs/benchmarks.md).
	if w.use.TryLock() {
		defer w.use.Unlock()
		reopen := time.Now()
		if err := w.reopen(ctx); err != nil {
			return st, fmt.Errorf("snapshot RAW: %w", err)
		}
		st.Reopened, st.Reopen = true, time.Since(reopen)
		w.reopenDue.Store(false) // an earlier snapshot's, done now
	} else {
		w.reopenDue.Store(true)
	}
	return st, nil
}

// reopenIfIdle does the reopen a snapshot left due, when nothing else holds DuckDB: no load or
// snapshot (the turn) and no reader (use). Called as a reader leaves; a load does it as it ends
// (reopenIfDue, before it gives the turn up). It never waits for a lock. While dbt has the models
// file, the reopen leaves it detached.
func (w *Warehouse) reopenIfIdle() {
	if !w.reopenDue.Load() {
		return
	}
	select {
	case w.turn <- struct{}{}:
	default:
		return
	}
	defer func() { <-w.turn }() // not release, which would try the reopen again
	w.reopenIfDue()
}

// reopenIfDue does the reopen a snapshot left due when no reader holds DuckDB; the caller holds
// the turn. A load ending does it before it lets the turn go: with loads back to back the turn
// passes from one to the next and is never free, and a reader leaving never found it free, so
// the reopen waited for the next snapshot and DuckDB's cache of RAW stayed a whole build longer.
func (w *Warehouse) reopenIfDue() {
	if !w.reopenDue.Load() || !w.use.TryLock() {
		return
	}
	defer w.use.Unlock()
	// Close may have run between: a closed warehouse stays closed.
	if w.db == nil || !w.reopenDue.CompareAndSwap(true, false) {
		return
	}
	start := time.Now()
	if err := w.reopen(context.Background()); err != nil {
		slog.Warn("warehouse: reopen after a snapshot", "path", w.path, "err", err)
		return
	}
	// Info, as the snapshot's own reopen: whether the deferred one fires in a stack is measured.
	slog.Info("warehouse: reopened after the queries a snapshot met", "path", w.path, "took_s", time.Since(start).Seconds())
}

// reopen closes DuckDB and opens it again with what it had attached, dropping its buffer pool;
// the caller holds the turn and use alone.
func (w *Warehouse) reopen(ctx context.Context) error {
	if err := w.closeDB(); err != nil {
		slog.Warn("warehouse: close before reopening", "path", w.path, "err", err)
	}
	if err := w.open(ctx); err != nil {
		return fmt.Errorf("reopen %s: %w", w.path, err)
	}
	if !w.attached {
		return nil
	}
	w.attached = false
	return w.attachModels(ctx)
}

// moveRaw moves the RAW tables out of a models file that still holds them (the layout before RAW
// had its own file) into RAW: the rows of every object the RAW ledger does not hold yet and
// their ledger rows, in one transaction, then drops the old schema. Interrupted, it runs again on
// the next start and moves only what is left.
func (w *Warehouse) moveRaw(ctx context.Context) error {
	if _, err := os.Stat(w.models); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	const old = "fin_models_before_raw_moved"
	if _, err := w.db.ExecContext(ctx, fmt.Sprintf("ATTACH %s AS %s", literal(w.models), old)); err != nil {
		return fmt.Errorf("open %s to move its RAW tables: %w%s", w.models, err, lockHint(err))
	}
	defer w.db.ExecContext(context.WithoutCancel(ctx), "DETACH DATABASE "+old)
	rows, err := w.db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_catalog = ? AND table_schema = ? ORDER BY table_name = ?, table_name`, old, Schema, warehouse.LedgerTable)
	if err != nil {
		return fmt.Errorf("list the RAW tables in %s: %w", w.models, err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return fmt.Errorf("list the RAW tables in %s: %w", w.models, err)
		}
		tables = append(tables, t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("list the RAW tables in %s: %w", w.models, err)
	}
	if len(tables) == 0 {
		return nil
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ledger := Schema + "." + warehouse.LedgerTable
	var moved int64
	// The ledger sorts last, so the rows of every object it does not hold yet are moved first.
	for _, t := range tables {
		from, to := old+"."+Schema+"."+quote(t), Schema+"."+quote(t)
		key := "_object_key"
		if t == warehouse.LedgerTable {
			key = "object_key"
		}
		stmts := []string{
			fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s AS SELECT * FROM %s LIMIT 0", to, from),
			fmt.Sprintf("INSERT INTO %s BY NAME SELECT * FROM %s WHERE %s NOT IN (SELECT object_key FROM %s)", to, from, key, ledger),
		}
		for i, s := range stmts {
			r, err := tx.ExecContext(ctx, s)
			if err != nil {
				return fmt.Errorf("move %s.%s into %s: %w", w.models, to, w.path, err)
			}
			if n, _ := r.RowsAffected(); i == 1 && t != warehouse.LedgerTable {
				moved += n
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("move the RAW tables of %s into %s: %w", w.models, w.path, err)
	}
	if _, err := w.db.ExecContext(ctx, "CHECKPOINT "+w.rawCatalog()); err != nil {
		return fmt.Errorf("checkpoint %s after moving RAW into it: %w", w.path, err)
	}
	if _, err := w.db.ExecContext(ctx, "DROP SCHEMA "+old+"."+Schema+" CASCADE"); err != nil {
		return fmt.Errorf("drop the moved RAW tables from %s: %w", w.models, err)
	}
	if _, err := w.db.ExecContext(ctx, "CHECKPOINT "+old); err != nil {
		return fmt.Errorf("checkpoint %s: %w", w.models, err)
	}
	if moved > 0 {
		slog.Info("moved the RAW tables into their own file", "rows", moved, "from", w.models, "to", w.path)
	}
	return nil
}

// rawCatalog is the RAW file's own database, which DuckDB names after the file: a CHECKPOINT
// names it, rather than the connection's default database, which search_path can move.
func (w *Warehouse) rawCatalog() string { return quote(catalogOf(w.path)) }
