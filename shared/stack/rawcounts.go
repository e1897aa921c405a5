package stack

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/fin-orchestrator/fin-orchestrator/shared/reconcile"
)

// rawCounts keeps the warehouse's current rows of each captured table (what
// reconcile.CurrentRowsSQL counts) from what each load adds: the status asks every few seconds,
// and counting afresh would read all of RAW each time, for a time that grows with it. Loads take
// RAW's writer one at a time, each stamping its rows with its transaction's start
// (duckdb.Warehouse.Load), so the latest stamp a query sees is a line no later load falls
// behind. Each table is counted afresh only the first time, when rows went away (a bronze object
// loaded again replaces its rows), or when a completed snapshot window moved the position before
// which no row is current.
type rawCounts struct {
	tables map[string]*rawCount
	// recounts is how many times a table was counted afresh (tests).
	recounts int
}

// rawCount is one table's count and what it was counted up to.
type rawCount struct {
	current int64  // current rows
	rows    int64  // RAW rows in all, to see rows go away
	at      int64  // µs since the epoch: the loads stamped up to this are counted
	bound   string // the snapshot windows' bound (reconcile.SnapshotBoundSQL) the count holds for
}

// count returns the current rows of table, running queries with query.
func (rc *rawCounts) count(ctx context.Context, query func(context.Context, string) ([][]string, error), table string) (int64, error) {
	if rc.tables == nil {
		rc.tables = map[string]*rawCount{}
	}
	prev := rc.tables[table]
	if prev != nil {
		rows, err := query(ctx, countAddedSQL(table, prev.at))
		if err != nil {
			return 0, err
		}
		next, delta, added, err := parseCount(rows)
		if err != nil {
			return 0, fmt.Errorf("count raw.%s: %w", table, err)
		}
		if next.rows == prev.rows+added && next.bound == prev.bound && next.at >= prev.at {
			next.current = prev.current + delta
			rc.tables[table] = &next
			return next.current, nil
		}
	}
	rows, err := query(ctx, countAllSQL(table))
	if err != nil {
		return 0, err
	}
	next, current, _, err := parseCount(rows)
	if err != nil {
		return 0, fmt.Errorf("count raw.%s: %w", table, err)
	}
	next.current = current
	rc.tables[table] = &next
	rc.recounts++
	return current, nil
}

// countHead is the columns both counts start with: the latest load's stamp, the windows' bound
// and RAW's rows, all in the statement's one snapshot.
func countHead(table string) string {
	return fmt.Sprintf(`(SELECT coalesce(epoch_us(max(loaded_at)), 0) FROM raw._load_ledger) AS at, %s AS bound,
		(SELECT count(*) FROM raw.%s) AS total`, reconcile.SnapshotBoundSQL(table), table)
}

// countAllSQL counts table's current rows afresh.
func countAllSQL(table string) string {
	return fmt.Sprintf(`SELECT %s, (%s) AS current, 0 AS added`, countHead(table), reconcile.CurrentRowsSQL(table, "count(*)"))
}

// countAddedSQL counts what the loads after the stamp since changed: the keys they touched,
// current now against current before them (their events alone, read through the key), and how
// many rows they added.
func countAddedSQL(table string, since int64) string {
	after := "_loaded_at > " + reconcile.StampSQL(since)
	latest := func(where string) string {
		return fmt.Sprintf(`(SELECT count(*) FROM (SELECT %s AS c FROM ev WHERE %s GROUP BY key)
			WHERE c.op <> 'd' AND (c.lsn IS NULL OR c.lsn >= (SELECT lsn FROM b)))`, reconcile.LatestSQL("{'op': op, 'lsn': lsn}"), where)
	}
	return fmt.Sprintf(`WITH b AS (SELECT %[1]s AS lsn),
		ev AS (SELECT key, op, lsn, "offset", %[2]s AS is_new FROM raw.%[3]s
			WHERE key IN (SELECT key FROM raw.%[3]s WHERE %[2]s))
		SELECT %[4]s, %[5]s - %[6]s AS delta, (SELECT count(*) FROM raw.%[3]s WHERE %[2]s) AS added`,
		reconcile.SnapshotBoundSQL(table), after, table, countHead(table), latest("true"), latest("NOT is_new"))
}

// parseCount reads a count's one row: the head, then the count (or the change of it), then the
// rows added.
func parseCount(rows [][]string) (rawCount, int64, int64, error) {
	if len(rows) != 1 || len(rows[0]) != 5 {
		return rawCount{}, 0, 0, errors.New("want one row of 5 columns")
	}
	var n [4]int64
	for i, col := range []int{0, 2, 3, 4} {
		v, err := strconv.ParseInt(rows[0][col], 10, 64)
		if err != nil {
			return rawCount{}, 0, 0, fmt.Errorf("column %d: %q: %w", col+1, rows[0][col], err)
		}
		n[i] = v
	}
	return rawCount{at: n[0], bound: rows[0][1], rows: n[1]}, n[2], n[3], nil
}
