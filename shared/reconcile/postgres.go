package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// table is one captured table: its primary key and every column, read from the catalog so a
// column added later is compared too.
type table struct {
	schema, name, key string
	keyType           string // the key column's type: a uuid's order is its text's
	columns           []column
	windows           bool // the warehouse has raw.snapshot_windows (currentRowsSQL)
}

// column is compared as text, normalised by kind: "timestamptz" (the instant, to the
// microsecond), "numeric" (the exact decimal value), anything else as Postgres writes it.
type column struct{ name, kind string }

// null stands for SQL/JSON null among compared values: Postgres text never holds a NUL byte.
const null = "\x00null"

// absent stands for a column the warehouse's row image lacks.
const absent = "\x00absent"

// order puts the system of record's tables first, in the capture's snapshot order.
var order = []string{"customers", "accounts", "transactions"}

// capturedTables returns the publication's tables that can be compared, and why each other one
// cannot (a signal table, a table without a version).
func capturedTables(ctx context.Context, pool *pgxpool.Pool, publication string) ([]table, []string, error) {
	rows, err := pool.Query(ctx, `
		SELECT p.schemaname, p.tablename, a.attname, t.typname,
		       coalesce(a.attnum = ANY (i.indkey), false) AS is_key
		  FROM pg_publication_tables p
		  JOIN pg_class c ON c.relname = p.tablename
		  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = p.schemaname
		  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		  JOIN pg_type t ON t.oid = a.atttypid
		  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
		 WHERE p.pubname = $1
		 ORDER BY p.schemaname, p.tablename, a.attnum`, publication)
	if err != nil {
		return nil, nil, fmt.Errorf("reconcile: read the tables of publication %s: %w", publication, err)
	}
	var all []table
	keys := map[string]int{}
	for rows.Next() {
		var schema, name, col, typ string
		var isKey bool
		if err := rows.Scan(&schema, &name, &col, &typ, &isKey); err != nil {
			return nil, nil, fmt.Errorf("reconcile: read the tables of publication %s: %w", publication, err)
		}
		if len(all) == 0 || all[len(all)-1].name != name || all[len(all)-1].schema != schema {
			all = append(all, table{schema: schema, name: name})
		}
		t := &all[len(all)-1]
		if isKey {
			t.key, t.keyType = col, typ
			keys[schema+"."+name]++
		}
		kind := "text"
		if typ == "timestamptz" || typ == "numeric" {
			kind = typ
		}
		t.columns = append(t.columns, column{name: col, kind: kind})
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reconcile: read the tables of publication %s: %w", publication, err)
	}
	var tables []table
	var skipped []string
	for _, t := range all {
		hasVersion := slices.ContainsFunc(t.columns, func(c column) bool { return c.name == "version" })
		switch n := keys[t.schema+"."+t.name]; {
		case n != 1:
			skipped = append(skipped, fmt.Sprintf("%s.%s: not compared, it has no single-column primary key", t.schema, t.name))
		case !hasVersion:
			skipped = append(skipped, fmt.Sprintf("%s.%s: not compared, it has no version column to compare rows at equal versions", t.schema, t.name))
		default:
			tables = append(tables, t)
		}
	}
	if len(tables) == 0 {
		return nil, skipped, fmt.Errorf("reconcile: publication %s captures no table that can be compared (run `fin migrate`): %s", publication, strings.Join(skipped, "; "))
	}
	rank := func(t table) int {
		if i := slices.Index(order, t.name); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(tables, func(a, b table) int { return rank(a) - rank(b) })
	return tables, skipped, nil
}

// position is where Postgres stood when a snapshot was taken.
type position struct {
	lsn   uint64
	began time.Time
	xmin  uint64 // the snapshot's xmin (xid8): a change it does not see is by a transaction at or after it
}

// postgresSnapshot begins the repeatable-read transaction a pass reads Postgres in and runs read
// inside it. Its first statement takes the snapshot and then reads the WAL insert position: every
// transaction the snapshot sees wrote its commit record below that position.
func postgresSnapshot(ctx context.Context, pool *pgxpool.Pool, read func(tx pgx.Tx, pos position) error) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var lsn, xmin string
		var pos position
		var err error
		if err := tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, now(), pg_snapshot_xmin(pg_current_snapshot())::text").Scan(&lsn, &pos.began, &xmin); err != nil {
			return fmt.Errorf("reconcile: read the WAL position: %w", err)
		}
		if pos.xmin, err = strconv.ParseUint(xmin, 10, 64); err != nil {
			return fmt.Errorf("reconcile: snapshot xmin %q: %w", xmin, err)
		}
		l, err := pglogrepl.ParseLSN(lsn)
		if err != nil {
			return fmt.Errorf("reconcile: WAL position %q: %w", lsn, err)
		}
		pos.lsn = uint64(l)
		return read(tx, pos)
	})
}

// postgresRows reads a table's rows in key order, one at a time (rowCursor).
type postgresRows struct {
	rows    pgx.Rows
	t       table
	key     string
	version int64
	vals    []*string
	dest    []any
}

// readTable queries t in tx in the order the warehouse's side comes in: bytewise on the key's
// text. A uuid's own order is that (lowercase hex at fixed places), so its primary key index
// serves; any other key is sorted as text in the "C" collation. keys, when set, limits it to
// those keys (a pass of what changed).
func readTable(ctx context.Context, tx pgx.Tx, t table, keys *keySet) (*postgresRows, error) {
	exprs := make([]string, len(t.columns))
	for i, c := range t.columns {
		id := pgx.Identifier{c.name}.Sanitize()
		switch c.kind {
		case "timestamptz":
			exprs[i] = fmt.Sprintf(`to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`, id)
		default:
			exprs[i] = id + "::text"
		}
	}
	key := pgx.Identifier{t.key}.Sanitize()
	order, _ := pgOrder(t)
	where, args := "", []any(nil)
	if keys != nil {
		where, args = pgKeysWhere(t, keys)
		where = " WHERE " + where
	}
	q := fmt.Sprintf("SELECT %s::text, version, %s FROM %s%s ORDER BY %s", key, strings.Join(exprs, ", "),
		pgx.Identifier{t.schema, t.name}.Sanitize(), where, order)
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reconcile: read %s: %w", t.name, err)
	}
	c := &postgresRows{rows: rows, t: t, vals: make([]*string, len(t.columns)), dest: make([]any, 2+len(t.columns))}
	c.dest[0], c.dest[1] = &c.key, &c.version
	for i := range c.vals {
		c.dest[2+i] = &c.vals[i]
	}
	return c, nil
}

func (c *postgresRows) next() (string, row, bool, error) {
	if !c.rows.Next() {
		if err := c.rows.Err(); err != nil {
			return "", row{}, false, fmt.Errorf("reconcile: read %s: %w", c.t.name, err)
		}
		return "", row{}, false, nil
	}
	if err := c.rows.Scan(c.dest...); err != nil {
		return "", row{}, false, fmt.Errorf("reconcile: read %s: %w", c.t.name, err)
	}
	r := row{version: c.version, values: make([]string, len(c.t.columns))}
	for i, v := range c.vals {
		if v == nil {
			r.values[i] = null
		} else {
			r.values[i] = normalize(c.t.columns[i].kind, *v)
		}
	}
	return c.key, r, true, nil
}

func (c *postgresRows) close() { c.rows.Close() }

// Slot is the capture's replication slot as Postgres reports it.
type Slot struct {
	Name      string `json:"name"`
	Exists    bool   `json:"exists"`
	Confirmed string `json:"confirmed_lsn,omitempty"` // confirmed_flush_lsn: the capture has delivered everything below it
	Status    string `json:"wal_status,omitempty"`    // "lost": Postgres removed WAL the slot still needed
	confirmed uint64
}

func readSlot(ctx context.Context, pool *pgxpool.Pool, name string) (Slot, error) {
	s := Slot{Name: name}
	var confirmed, status *string
	err := pool.QueryRow(ctx, `SELECT confirmed_flush_lsn::text, wal_status FROM pg_replication_slots WHERE slot_name = $1`, name).
		Scan(&confirmed, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("reconcile: read replication slot %s: %w", name, err)
	}
	s.Exists = true
	if status != nil {
		s.Status = *status
	}
	if confirmed != nil {
		l, err := pglogrepl.ParseLSN(*confirmed)
		if err != nil {
			return s, fmt.Errorf("reconcile: slot %s position %q: %w", name, *confirmed, err)
		}
		s.Confirmed, s.confirmed = *confirmed, uint64(l)
	}
	return s, nil
}
