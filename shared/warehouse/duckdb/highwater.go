package duckdb

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// highWaters is, per bronze table, the greatest object key the load ledger holds of it: where the
// loader's catch-up starts listing the table every 30 s (HighWaters, loader.RecentObjects). The
// ledger grows by a row per object for as long as the lake lives, so it is read for them once,
// when the warehouse opens (the stack's start, which lists the whole bucket anyway), and each
// load raises its table's after its commit; a pass copies a key per table and reads no ledger row.
//
// They are never ahead of the ledger: they hold only keys of committed ledger rows, so a failed
// load (rolled back) never moves them, and a crash loses nothing the next open does not read
// again. They may lag behind the ledger for a moment (a commit not yet counted), which only makes
// a listing start earlier. Raises are a max under a mutex, so concurrent loads may count in any
// order. Kept in memory rather than in a relation raised in each load's transaction: that
// statement cost a load about 2 ms of CPU (0.5 ms as a bare UPDATE), every load, where this costs
// a comparison (docs/benchmarks.md).
type highWaters struct {
	mu    sync.Mutex
	marks map[string]string // by table prefix, "bronze/<table>/"
}

// highWaterPrefix is the table prefix ("bronze/<table>/") of a bronze key, as ledgerNewestQuery
// groups the ledger; ok is false for a key outside bronze/.
func highWaterPrefix(key string) (prefix string, ok bool) {
	rest, ok := strings.CutPrefix(key, "bronze/")
	if !ok {
		return "", false
	}
	table, _, _ := strings.Cut(rest, "/")
	return "bronze/" + table + "/", true
}

// ledgerNewestQuery is the greatest key of each table in the ledger. Its table prefix must be
// highWaterPrefix's.
const ledgerNewestQuery = `SELECT 'bronze/' || split_part(object_key, '/', 2) || '/', max(object_key)
	FROM ` + Schema + `.` + warehouse.LedgerTable + ` WHERE starts_with(object_key, 'bronze/') GROUP BY 1`

// readHighWaters sets the high waters from the ledger: once, at Open, after moveRaw.
func (w *Warehouse) readHighWaters(ctx context.Context) error {
	rows, err := w.db.QueryContext(ctx, ledgerNewestQuery)
	if err != nil {
		return fmt.Errorf("the ledger's newest keys in %s: %w", w.path, err)
	}
	defer rows.Close()
	marks := map[string]string{}
	for rows.Next() {
		var prefix, key string
		if err := rows.Scan(&prefix, &key); err != nil {
			return fmt.Errorf("the ledger's newest keys in %s: %w", w.path, err)
		}
		marks[prefix] = key
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("the ledger's newest keys in %s: %w", w.path, err)
	}
	w.marks.mu.Lock()
	w.marks.marks = marks
	w.marks.mu.Unlock()
	return nil
}

// raise counts a key whose ledger row has committed: its table's high water goes up to it, never
// down (an older object loaded late, a rewrite of one).
func (h *highWaters) raise(key string) {
	prefix, ok := highWaterPrefix(key)
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.marks == nil {
		h.marks = map[string]string{}
	}
	if key > h.marks[prefix] {
		h.marks[prefix] = key
	}
}

// HighWaters gives the greatest bronze key the load ledger holds of each table, by the table's
// prefix ("bronze/<table>/"): where the loader's catch-up starts listing (loader.RecentObjects).
// It reads no row of the ledger: see highWaters.
func (w *Warehouse) HighWaters(context.Context) (map[string]string, error) {
	if err := w.share(); err != nil {
		return nil, err
	}
	defer w.unshare()
	w.marks.mu.Lock()
	defer w.marks.mu.Unlock()
	if w.marks.marks == nil {
		return map[string]string{}, nil
	}
	return maps.Clone(w.marks.marks), nil
}
