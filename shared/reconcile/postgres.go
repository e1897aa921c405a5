package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
			t.key = col
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

// estimatedRows is the planner's estimate of the tables' rows (pg_class.reltuples; -1 before the
// first ANALYZE counts as nothing).
func estimatedRows(ctx context.Context, pool *pgxpool.Pool, tables []table) (int64, error) {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = pgx.Identifier{t.schema, t.name}.Sanitize()
	}
	var n int64
	err := pool.QueryRow(ctx, `SELECT coalesce(sum(greatest(reltuples, 0)), 0)::bigint FROM pg_class
		WHERE oid = ANY (SELECT to_regclass(unnest($1::text[])))`, names).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("reconcile: estimate the tables' rows: %w", err)
	}
	return n, nil
}

// position is where Postgres stood when a snapshot was taken.
type position struct {
	lsn   uint64
	began time.Time
}

// postgresSnapshot reads every captured table in one repeatable-read transaction. Its first
// statement takes the snapshot and then reads the WAL insert position: every transaction the
// snapshot sees wrote its commit record below that position.
func postgresSnapshot(ctx context.Context, pool *pgxpool.Pool, tables []table) (Snapshot, position, error) {
	snap := Snapshot{}
	var pos position
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var lsn string
		if err := tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, now()").Scan(&lsn, &pos.began); err != nil {
			return fmt.Errorf("reconcile: read the WAL position: %w", err)
		}
		l, err := pglogrepl.ParseLSN(lsn)
		if err != nil {
			return fmt.Errorf("reconcile: WAL position %q: %w", lsn, err)
		}
		pos.lsn = uint64(l)
		for _, t := range tables {
			m, err := readTable(ctx, tx, t)
			if err != nil {
				return err
			}
			snap[t.name] = m
		}
		return nil
	})
	return snap, pos, err
}

func readTable(ctx context.Context, tx pgx.Tx, t table) (map[string]row, error) {
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
	q := fmt.Sprintf("SELECT %s::text, version, %s FROM %s", pgx.Identifier{t.key}.Sanitize(), strings.Join(exprs, ", "),
		pgx.Identifier{t.schema, t.name}.Sanitize())
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("reconcile: read %s: %w", t.name, err)
	}
	defer rows.Close()
	m := map[string]row{}
	vals := make([]*string, len(t.columns))
	dest := make([]any, 2+len(t.columns))
	var key string
	var version int64
	dest[0], dest[1] = &key, &version
	for i := range vals {
		dest[2+i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("reconcile: read %s: %w", t.name, err)
		}
		r := row{version: version, values: make([]string, len(t.columns))}
		for i, v := range vals {
			if v == nil {
				r.values[i] = null
			} else {
				r.values[i] = normalize(t.columns[i].kind, *v)
			}
		}
		m[key] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reconcile: read %s: %w", t.name, err)
	}
	return m, nil
}

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
