// Package reconcile compares the system of record (Postgres) with the warehouse: row counts,
// the current version of every row, and the money on every account. The pipeline is eventually
// consistent, so a row the warehouse has not caught up with yet is lag, not a difference:
// Compare waits for the lag to drain (up to a limit) and reports only real disagreements — a row
// at the same version with other values, a version the source never had, or lag that does not
// drain.
package reconcile

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Warehouse runs a query and writes its result as CSV with a header (the local DuckDB, or the
// running stack's SQL endpoint).
type Warehouse interface {
	Query(ctx context.Context, query string, out io.Writer) error
}

// table says how to read one captured table on both sides. Fields are compared as text, so
// money compares exactly ("12.30" both sides).
type table struct {
	name, key string
	// fields are compared at equal versions; Postgres renders them with pgExpr, the warehouse
	// reads them from the change event's row image.
	fields []field
}

type field struct{ name, pgExpr string }

var tables = []table{
	{"customers", "customer_id", []field{{"email", "email"}, {"closed", "(closed_at IS NOT NULL)::text"}}},
	{"accounts", "account_id", []field{{"balance", "balance::text"}, {"status", "status::text"}, {"currency", "currency"}}},
	{"transactions", "transaction_id", []field{{"amount", "amount::text"}, {"status", "status::text"}, {"account_id", "account_id::text"}}},
}

// row is one current row: its version and compared fields.
type row struct {
	version int64
	values  []string
}

// Snapshot is one side's current rows by table and key.
type Snapshot map[string]map[string]row

// Report is the outcome of a comparison.
type Report struct {
	// Counts per table: rows in Postgres and current rows in the warehouse.
	Counts map[string][2]int
	// Lag lists rows the warehouse has not caught up with (missing, older, or deleted since).
	Lag []string
	// Differences lists real disagreements.
	Differences []string
	// Balances sums the balances per currency on each side.
	Balances map[string][2]string
}

// OK is true when the two sides agree entirely.
func (r Report) OK() bool { return len(r.Lag) == 0 && len(r.Differences) == 0 }

// Compare reads both sides until they agree or wait has passed, and returns the last report.
// The warehouse is read first, so anything it holds is at most as new as what Postgres shows.
func Compare(ctx context.Context, pool *pgxpool.Pool, wh Warehouse, wait time.Duration) (Report, error) {
	deadline := time.Now().Add(wait)
	for {
		w, err := warehouseSnapshot(ctx, wh)
		if err != nil {
			return Report{}, err
		}
		p, err := postgresSnapshot(ctx, pool)
		if err != nil {
			return Report{}, err
		}
		rep := compare(p, w)
		if rep.OK() || len(rep.Differences) > 0 || time.Now().After(deadline) {
			return rep, nil
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func postgresSnapshot(ctx context.Context, pool *pgxpool.Pool) (Snapshot, error) {
	snap := Snapshot{}
	// One repeatable-read transaction: every table at the same point.
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		for _, t := range tables {
			exprs := make([]string, len(t.fields))
			for i, f := range t.fields {
				exprs[i] = "coalesce(" + f.pgExpr + ", '')"
			}
			rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s::text, version, %s FROM %s", t.key, strings.Join(exprs, ", "), t.name))
			if err != nil {
				return fmt.Errorf("read %s: %w", t.name, err)
			}
			m := map[string]row{}
			for rows.Next() {
				vals := make([]any, 2+len(t.fields))
				var key string
				var r row
				r.values = make([]string, len(t.fields))
				vals[0], vals[1] = &key, &r.version
				for i := range t.fields {
					vals[2+i] = &r.values[i]
				}
				if err := rows.Scan(vals...); err != nil {
					return fmt.Errorf("read %s: %w", t.name, err)
				}
				m[key] = r
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("read %s: %w", t.name, err)
			}
			snap[t.name] = m
		}
		return nil
	})
	return snap, err
}

// warehouseQuery is the current version of every key of a RAW table: the latest event by log
// position, unless it is a delete.
func warehouseQuery(t table) string {
	cols := make([]string, len(t.fields))
	for i, f := range t.fields {
		expr := fmt.Sprintf("coalesce(json_extract_string(after, '$.%s'), '')", f.name)
		if f.name == "closed" {
			expr = "CASE WHEN json_extract_string(after, '$.closed_at') IS NULL THEN 'false' ELSE 'true' END"
		}
		cols[i] = expr + " AS " + f.name
	}
	return CurrentRowsSQL(t.name, fmt.Sprintf(`json_extract_string(after, '$.%s') AS id,
		CAST(json_extract_string(after, '$.version') AS BIGINT) AS version, %s`, t.key, strings.Join(cols, ", ")))
}

// CurrentRowsSQL selects columns from the rows raw.<table> says the table holds now: the latest
// change event of each key by log position, unless it is a delete.
func CurrentRowsSQL(table, columns string) string {
	return fmt.Sprintf(`SELECT %s FROM (SELECT * FROM raw.%s
		QUALIFY row_number() OVER (PARTITION BY key ORDER BY lsn DESC, "offset" DESC) = 1) WHERE op <> 'd'`, columns, table)
}

func warehouseSnapshot(ctx context.Context, wh Warehouse) (Snapshot, error) {
	snap := Snapshot{}
	for _, t := range tables {
		var buf bytes.Buffer
		if err := wh.Query(ctx, warehouseQuery(t), &buf); err != nil {
			return nil, fmt.Errorf("read warehouse raw.%s: %w", t.name, err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			return nil, fmt.Errorf("read warehouse raw.%s: %w", t.name, err)
		}
		m := map[string]row{}
		for _, rec := range recs[min(1, len(recs)):] { // skip the header
			if len(rec) != 2+len(t.fields) {
				return nil, fmt.Errorf("warehouse raw.%s: %d columns, want %d", t.name, len(rec), 2+len(t.fields))
			}
			v, err := strconv.ParseInt(rec[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("warehouse raw.%s key %s: version %q: %w", t.name, rec[0], rec[1], err)
			}
			m[rec[0]] = row{version: v, values: rec[2:]}
		}
		snap[t.name] = m
	}
	return snap, nil
}

// compare judges a Postgres snapshot p against a warehouse snapshot w read before it.
func compare(p, w Snapshot) Report {
	rep := Report{Counts: map[string][2]int{}, Balances: map[string][2]string{}}
	for _, t := range tables {
		pr, wr := p[t.name], w[t.name]
		rep.Counts[t.name] = [2]int{len(pr), len(wr)}
		for _, key := range sortedKeys(pr) {
			a := pr[key]
			b, ok := wr[key]
			switch {
			case !ok:
				rep.Lag = append(rep.Lag, fmt.Sprintf("%s %s: in Postgres at version %d, not yet in the warehouse", t.name, key, a.version))
			case b.version < a.version:
				rep.Lag = append(rep.Lag, fmt.Sprintf("%s %s: warehouse at version %d, Postgres at %d", t.name, key, b.version, a.version))
			case b.version > a.version:
				rep.Differences = append(rep.Differences, fmt.Sprintf("%s %s: warehouse has version %d, which Postgres (at %d) never reached", t.name, key, b.version, a.version))
			default:
				for i, f := range t.fields {
					if a.values[i] != b.values[i] {
						rep.Differences = append(rep.Differences, fmt.Sprintf("%s %s version %d: %s is %q in Postgres but %q in the warehouse",
							t.name, key, a.version, f.name, a.values[i], b.values[i]))
					}
				}
			}
		}
		for _, key := range sortedKeys(wr) {
			if _, ok := pr[key]; !ok {
				rep.Lag = append(rep.Lag, fmt.Sprintf("%s %s: deleted in Postgres, still current in the warehouse", t.name, key))
			}
		}
	}
	rep.Balances = balances(p, w)
	return rep
}

// balances sums account balances per currency on each side, exactly (in cents).
func balances(p, w Snapshot) map[string][2]string {
	sums := map[string]*[2]int64{}
	for side, s := range []Snapshot{p, w} {
		for _, r := range s["accounts"] {
			cur := r.values[2]
			if sums[cur] == nil {
				sums[cur] = &[2]int64{}
			}
			sums[cur][side] += cents(r.values[0])
		}
	}
	out := map[string][2]string{}
	for cur, s := range sums {
		out[cur] = [2]string{formatCents(s[0]), formatCents(s[1])}
	}
	return out
}

// cents reads a decimal string with at most two places ("12.3", "12.30") as whole cents.
func cents(s string) int64 {
	whole, frac, _ := strings.Cut(s, ".")
	frac = (frac + "00")[:2]
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	if strings.HasPrefix(whole, "-") {
		return w*100 - f
	}
	return w*100 + f
}

func formatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

func sortedKeys(m map[string]row) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Write prints a report for people: counts and balances side by side, then what differs.
func (r Report) Write(w io.Writer) {
	fmt.Fprintf(w, "%-14s %12s %12s\n", "table", "postgres", "warehouse")
	for _, t := range tables {
		c := r.Counts[t.name]
		fmt.Fprintf(w, "%-14s %12d %12d\n", t.name, c[0], c[1])
	}
	curs := make([]string, 0, len(r.Balances))
	for c := range r.Balances {
		curs = append(curs, c)
	}
	sort.Strings(curs)
	for _, c := range curs {
		fmt.Fprintf(w, "balance %-6s %12s %12s\n", c, r.Balances[c][0], r.Balances[c][1])
	}
	show := func(title string, lines []string) {
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s (%d):\n", title, len(lines))
		for i, l := range lines {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more\n", len(lines)-20)
				break
			}
			fmt.Fprintln(w, "  "+l)
		}
	}
	show("differences", r.Differences)
	show("not yet in the warehouse", r.Lag)
	if r.OK() {
		fmt.Fprintln(w, "\nPostgres and the warehouse agree.")
	}
}
