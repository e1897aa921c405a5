package reconcile

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// A pass of what changed (PassChanged) compares, of each table, the keys that changed on either
// side since the last pass, the keys that disagreed then, and the next Sweep keys in turn: its
// cost follows the changes, not the tables, and every key is still compared once a sweep.
//
// Changed on Postgres's side: a row written by a transaction at or after the last pass's xmin
// (the oldest transaction its snapshot did not see; age() compares xids across wraparound). A
// row's xmin is its writer's, so this finds every insert and update a later snapshot sees that
// the last one did not. It cannot find a delete (no row is left): the warehouse's side finds a
// delete it received, and a delete it never received is found by the sweep.
//
// Changed on the warehouse's side: a key with an event loaded after the last pass's latest load.
// Loads take RAW's writer one at a time (duckdb.Warehouse.Load), each stamping its rows and its
// ledger row with its transaction's start: the latest stamp the ledger shows is then a line no
// later load falls behind.
//
// Both are read before the warehouse, as the verdicts need (reconcile.go): a key changed after
// that is read by the next pass, which looks from this pass's discovery on. The verdicts are
// present's and deleted's, the same as a full pass's; only a reference that did not compare a key
// knows nothing of it (refUnknown), so a loss first seen on such a key is judged against a later
// reference, up to half a grace later.

// keySet is the keys of one table a pass of what changed compares: some named (in key order),
// and the sweep's range (lo, hi] (lo "": from the first key; toEnd: to the last).
type keySet struct {
	keys  []string
	lo    string
	hi    string
	toEnd bool
}

// selection is what a pass compares, per table; nil: every key.
type selection map[string]*keySet

// maxNamed bounds the keys a pass of what changed names in its queries: beyond it (a backlog, a
// bulk change) the pass reads every key, as a full one.
const maxNamed = 50_000

// since is where the last pass left off.
type since struct {
	xmin   uint64              // Postgres: a later change is by a transaction at or after this xid (xid8)
	loaded int64               // warehouse: every load up to this stamp (µs since the epoch) was seen
	carry  map[string][]string // per table, the keys that disagreed, in key order
	cursor map[string]string   // per table, where the sweep goes on ("" from the first key)
}

// after is where a pass that started from s leaves off: pos is its snapshot's position (a full
// pass saw every change before it), disagree its keys judged other than agreeing.
func (s *since) after(pos position, disagree map[string][]string, partial bool) *since {
	if s == nil {
		return nil
	}
	if !partial {
		s.xmin = pos.xmin
	}
	s.carry = disagree
	return s
}

// choose decides what this pass compares. A full pass of a Reconciler that has made passes of
// what changed (track) notes where the warehouse's loads stand, for the next one.
func (r *Reconciler) choose(ctx context.Context, tables []table, track, changed bool) (selection, *since, error) {
	if !track {
		return nil, nil, nil
	}
	prev := r.since
	next := &since{cursor: map[string]string{}}
	if prev != nil {
		for t, c := range prev.cursor {
			next.cursor[t] = c
		}
	}
	var pgChanged map[string][]string
	var err error
	if changed {
		// Postgres first: its discovery's xmin is where the next pass looks from.
		if pgChanged, err = r.postgresChanges(ctx, tables, prev, next); err != nil {
			return nil, nil, err
		}
	}
	if next.loaded, err = latestLoad(ctx, r.wh); err != nil {
		return nil, nil, err
	}
	if !changed || next.loaded < prev.loaded { // a warehouse refilled from the start: read it all
		return nil, next, nil
	}
	sel := selection{}
	named := 0
	for _, t := range tables {
		whChanged, err := warehouseChanges(ctx, r.wh, t, prev.loaded, next.loaded)
		if err != nil {
			return nil, nil, err
		}
		ks := sel[t.name]
		if ks == nil {
			hi := next.cursor[t.name]
			ks = &keySet{lo: prev.cursor[t.name], hi: hi, toEnd: hi == ""}
			sel[t.name] = ks
		}
		ks.keys = slices.Compact(slices.Sorted(slices.Values(slices.Concat(pgChanged[t.name], whChanged, prev.carry[t.name]))))
		named += len(ks.keys)
	}
	if named > maxNamed {
		return nil, next, nil
	}
	return sel, next, nil
}

// postgresChanges reads, in one snapshot, the keys of each table written at or after prev's xmin
// and where each table's sweep ends this pass; next takes the snapshot's xmin and the cursors.
func (r *Reconciler) postgresChanges(ctx context.Context, tables []table, prev, next *since) (map[string][]string, error) {
	out := map[string][]string{}
	err := postgresSnapshot(ctx, r.pool, func(tx pgx.Tx, pos position) error {
		next.xmin = pos.xmin
		for _, t := range tables {
			key := pgx.Identifier{t.key}.Sanitize()
			rel := pgx.Identifier{t.schema, t.name}.Sanitize()
			rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s::text FROM %s WHERE age(xmin) <= age($1::text::xid)", key, rel),
				strconv.FormatUint(prev.xmin&0xffffffff, 10))
			if err != nil {
				return fmt.Errorf("reconcile: read the changed keys of %s: %w", t.name, err)
			}
			keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("reconcile: read the changed keys of %s: %w", t.name, err)
			}
			out[t.name] = keys
			if err := r.sweepEnd(ctx, tx, t, next); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// sweepEnd finds the key Sweep keys after t's cursor and moves the cursor there ("" when the
// table ends first: the next pass starts over).
func (r *Reconciler) sweepEnd(ctx context.Context, tx pgx.Tx, t table, next *since) error {
	order, cast := pgOrder(t)
	lo := next.cursor[t.name]
	where, args := "", []any{r.opt.Sweep - 1}
	if lo != "" {
		where, args = fmt.Sprintf(" WHERE %s > $2%s", order, cast), append(args, lo)
	}
	key := pgx.Identifier{t.key}.Sanitize()
	var hi string
	err := tx.QueryRow(ctx, fmt.Sprintf("SELECT %s::text FROM %s%s ORDER BY %s OFFSET $1 LIMIT 1", key,
		pgx.Identifier{t.schema, t.name}.Sanitize(), where, order), args...).Scan(&hi)
	switch {
	case err == pgx.ErrNoRows:
		next.cursor[t.name] = ""
	case err != nil:
		return fmt.Errorf("reconcile: read where the sweep of %s ends: %w", t.name, err)
	default:
		next.cursor[t.name] = hi
	}
	return nil
}

// pgOrder is the expression a table's keys are ordered by on Postgres's side (readTable), and
// the cast that makes a parameter comparable with it.
func pgOrder(t table) (order, cast string) {
	key := pgx.Identifier{t.key}.Sanitize()
	if t.keyType == "uuid" {
		return key, "::uuid"
	}
	return key + `::text COLLATE "C"`, ""
}

// pgKeysWhere selects the keys of ks on Postgres's side: the named ones through the primary
// key's index, and the sweep's range.
func pgKeysWhere(t table, ks *keySet) (string, []any) {
	order, cast := pgOrder(t)
	named := fmt.Sprintf(`%s::text COLLATE "C" = ANY($1::text[])`, pgx.Identifier{t.key}.Sanitize())
	if t.keyType == "uuid" {
		named = order + " = ANY($1::text[]::uuid[])"
	}
	args := []any{ks.keys}
	var rng []string
	if ks.lo != "" {
		args = append(args, ks.lo)
		rng = append(rng, fmt.Sprintf("%s > $%d%s", order, len(args), cast))
	}
	if !ks.toEnd {
		args = append(args, ks.hi)
		rng = append(rng, fmt.Sprintf("%s <= $%d%s", order, len(args), cast))
	}
	if len(rng) == 0 {
		return "true", nil
	}
	return "(" + named + " OR (" + strings.Join(rng, " AND ") + "))", args
}

// warehouseKey is a RAW table's primary key value, from the event's key (Debezium's JSON of the
// primary key columns), which a delete carries too.
func warehouseKey(t table) string {
	return "json_extract_string(key, '$.\"" + strings.ReplaceAll(t.key, "'", "''") + "\"')"
}

// warehouseKeysWhere selects the keys of ks on the warehouse's side, in the same bytewise order.
func warehouseKeysWhere(t table, ks *keySet) string {
	k := warehouseKey(t)
	var rng []string
	if ks.lo != "" {
		rng = append(rng, k+" > "+sqlString(ks.lo))
	}
	if !ks.toEnd {
		rng = append(rng, k+" <= "+sqlString(ks.hi))
	}
	if len(rng) == 0 {
		return "true"
	}
	where := "(" + strings.Join(rng, " AND ") + ")"
	if len(ks.keys) > 0 {
		quoted := make([]string, len(ks.keys))
		for i, key := range ks.keys {
			quoted[i] = sqlString(key)
		}
		// The named keys as a table the key is looked up in (a hash join), not a list of
		// constants: inside the OR, DuckDB compared each row's key with every constant in turn,
		// and 20,000 keys over 300,000 rows took 60-80 s instead of 1 s (docs/benchmarks.md). All
		// that time the pass held the warehouse's read lock, so no RAW snapshot could drop
		// DuckDB's cache, and held its per-thread state in memory
		// (TestNamedKeysAreJoinedNotCompared).
		where = "(" + k + " IN (SELECT * FROM (VALUES (" + strings.Join(quoted, "), (") + "))) OR " + where + ")"
	}
	return where
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// latestLoad is the stamp of the warehouse's latest load (µs since the epoch; 0 before any).
func latestLoad(ctx context.Context, wh Warehouse) (int64, error) {
	rows, err := queryCSV(ctx, wh, `SELECT coalesce(epoch_us(max(loaded_at)), 0) FROM raw._load_ledger`)
	if err != nil || len(rows) != 1 {
		return 0, fmt.Errorf("reconcile: read the warehouse's latest load: %v", err)
	}
	return strconv.ParseInt(rows[0][0], 10, 64)
}

// warehouseChanges is the keys of t with an event loaded after the stamp from up to to.
func warehouseChanges(ctx context.Context, wh Warehouse, t table, from, to int64) ([]string, error) {
	if to <= from {
		return nil, nil
	}
	rows, err := queryCSV(ctx, wh, fmt.Sprintf(`SELECT DISTINCT %s FROM raw.%s WHERE _loaded_at > %s AND _loaded_at <= %s`,
		warehouseKey(t), t.name, StampSQL(from), StampSQL(to)))
	if err != nil {
		return nil, fmt.Errorf("reconcile: read the keys loaded into raw.%s: %w", t.name, err)
	}
	keys := make([]string, 0, len(rows))
	for _, r := range rows {
		if r[0] != "" {
			keys = append(keys, r[0])
		}
	}
	return keys, nil
}

// StampSQL is a TIMESTAMPTZ literal of µs since the epoch, to compare _loaded_at with (a literal,
// so DuckDB skips the row groups loaded before it).
func StampSQL(us int64) string {
	return "TIMESTAMPTZ '" + time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.000000") + "+00'"
}

// queryCSV runs a query and returns its rows without the header.
func queryCSV(ctx context.Context, wh Warehouse, q string) ([][]string, error) {
	var buf bytes.Buffer
	if err := wh.Query(ctx, q, &buf); err != nil {
		return nil, err
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	return recs[1:], nil
}
