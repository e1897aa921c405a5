package reconcile

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/shopspring/decimal"
)

// A pass walks each table's two sides in key order at once and keeps nothing per row: its memory
// does not grow with the tables (only with the lines of what disagrees). The verdict on each key
// is report.go's (present, deleted); this file only pairs the keys up.

// rowCursor yields one side's current rows of one table in ascending key order, compared
// bytewise (Go's string order, Postgres's "C" collation, DuckDB's default): ok is false after the
// last row.
type rowCursor interface {
	next() (key string, r row, ok bool, err error)
}

// versionCursor yields an earlier pass's versions of one table in the same order.
type versionCursor interface {
	next() (key string, version int64, ok bool, err error)
}

// row is one current row: its version, the commit time of that version (warehouse side only, in
// microseconds) and the compared values in the table's column order.
type row struct {
	version  int64
	commitUs int64
	values   []string
}

// ordered is a side's cursor one row ahead, refusing keys out of order: the merge pairs keys
// right only if each side's keys strictly ascend.
type ordered struct {
	c           rowCursor
	what        string // "Postgres public.accounts"
	key         string
	r           row
	ok, started bool
}

func (o *ordered) advance() error {
	k, r, ok, err := o.c.next()
	if err != nil {
		return err
	}
	if ok && o.started && k <= o.key {
		return fmt.Errorf("reconcile: %s: key %q came after %q, not in ascending order", o.what, k, o.key)
	}
	if o.ok = ok; ok {
		o.key, o.r, o.started = k, r, true
	}
	return nil
}

// refState is what a reference pass knew of a key.
type refState int

const (
	refAbsent  refState = iota // not in Postgres then
	refPresent                 // in Postgres then, at the version given
	refUnknown                 // a pass of what changed that did not compare the key
)

// absentVersion marks, among a pass's kept versions, a key it compared that Postgres did not
// hold (the warehouse did): a pass of what changed knows nothing of the keys it did not compare.
const absentVersion = math.MinInt64

// refVersions looks up an earlier pass's versions for keys asked in ascending order.
type refVersions struct {
	c       versionCursor // nil: no reference, every key is absent from it
	partial bool          // the reference compared only some keys: one it lacks is unknown
	key     string
	v       int64
	ok      bool
}

func (r *refVersions) at(key string) (int64, refState, error) {
	for r.c != nil && r.ok && r.key < key {
		var err error
		if r.key, r.v, r.ok, err = r.c.next(); err != nil {
			return 0, refAbsent, err
		}
	}
	switch {
	case r.c != nil && r.ok && r.key == key && r.v != absentVersion:
		return r.v, refPresent, nil
	case r.c != nil && r.ok && r.key == key, !r.partial:
		return 0, refAbsent, nil
	}
	return 0, refUnknown, nil
}

func (r *refVersions) start() (err error) {
	if r.c != nil {
		r.key, r.v, r.ok, err = r.c.next()
	}
	return err
}

// comparison is one pass's verdicts so far, and its money per currency.
type comparison struct {
	rep Report
	ref *reference
	j   judge
	// sums holds, per entry of moneyColumns, each currency's total on each side (Postgres, the
	// warehouse).
	sums []map[string]*[2]decimal.Decimal
	// disagree holds, per table, the keys judged other than agreeing, in key order: a pass of
	// what changed compares them again.
	disagree map[string][]string
}

func newComparison(ref *reference, j judge) *comparison {
	c := &comparison{ref: ref, j: j, sums: make([]map[string]*[2]decimal.Decimal, len(moneyColumns)), disagree: map[string][]string{}}
	c.rep.Snapshotting = j.snapshotting
	return c
}

// compareTable pairs up the keys of Postgres (pg) and the warehouse (wh) in one walk, judging
// each, with the reference's versions (ref, nil without one); keep, when set, is handed every
// Postgres key and version (the pass remembered for later ones).
func (c *comparison) compareTable(t table, pg, wh rowCursor, ref versionCursor, keep func(key string, version int64) error) error {
	p := &ordered{c: pg, what: "Postgres " + t.name}
	w := &ordered{c: wh, what: "warehouse raw." + t.name}
	rv := &refVersions{c: ref, partial: c.ref != nil && c.ref.partial}
	if err := errors.Join(p.advance(), w.advance(), rv.start()); err != nil {
		return err
	}
	add := c.money(t)
	count := TableCount{Table: t.name}
	for p.ok || w.ok {
		onlyW := !p.ok || (w.ok && w.key < p.key)
		both := !onlyW && w.ok && w.key == p.key
		key := p.key
		if onlyW {
			key = w.key
		}
		v, state, err := rv.at(key)
		if err != nil {
			return err
		}
		judged := c.judged()
		switch {
		case onlyW:
			c.deleted(t, key, w.r, state)
			if keep != nil {
				if err := keep(key, absentVersion); err != nil {
					return err
				}
			}
		case both:
			c.present(t, key, p.r, &w.r, v, state == refPresent)
		default:
			c.present(t, key, p.r, nil, v, state == refPresent)
		}
		if c.judged() > judged {
			c.disagree[t.name] = append(c.disagree[t.name], key)
		}
		if !onlyW {
			count.Postgres++
			add(0, p.r)
			if keep != nil {
				if err := keep(key, p.r.version); err != nil {
					return err
				}
			}
			if err := p.advance(); err != nil {
				return err
			}
		}
		if onlyW || both {
			count.Warehouse++
			add(1, w.r)
			if err := w.advance(); err != nil {
				return err
			}
		}
	}
	c.rep.Tables = append(c.rep.Tables, count)
	return nil
}

// lag counts a change not in the warehouse yet, and writes its line while fewer than LagKept are.
func (c *comparison) lag(format string, a ...any) {
	if len(c.rep.Lag) >= LagKept {
		c.rep.LagMore++
		return
	}
	c.rep.Lag = append(c.rep.Lag, fmt.Sprintf(format, a...))
}

// judged is how many disagreements the pass has judged so far.
func (c *comparison) judged() int {
	return len(c.rep.Differences) + len(c.rep.Lost) + c.rep.Lagging()
}

// moneyColumns are the money columns summed per currency.
var moneyColumns = []struct{ table, amount, currency string }{
	{"accounts", "balance", "currency"},
	{"transactions", "amount", "currency"},
}

// money returns what sums a row of t into its side's total per currency, exactly (a no-op for a
// table without money).
func (c *comparison) money(t table) func(side int, r row) {
	for m, mc := range moneyColumns {
		if mc.table != t.name {
			continue
		}
		ai := slices.IndexFunc(t.columns, func(col column) bool { return col.name == mc.amount })
		ci := slices.IndexFunc(t.columns, func(col column) bool { return col.name == mc.currency })
		if ai < 0 || ci < 0 {
			break
		}
		sums := map[string]*[2]decimal.Decimal{}
		c.sums[m] = sums
		return func(side int, r row) {
			cur := r.values[ci]
			if sums[cur] == nil {
				sums[cur] = &[2]decimal.Decimal{}
			}
			if d, err := decimal.NewFromString(r.values[ai]); err == nil {
				sums[cur][side] = sums[cur][side].Add(d)
			}
		}
	}
	return func(int, row) {}
}

// report is the verdicts with the money per column and currency, in currency order.
func (c *comparison) report() Report {
	rep := c.rep
	for m, mc := range moneyColumns {
		sums := c.sums[m]
		if sums == nil {
			continue
		}
		curs := make([]string, 0, len(sums))
		for cur := range sums {
			curs = append(curs, cur)
		}
		sort.Strings(curs)
		for _, cur := range curs {
			rep.Money = append(rep.Money, Money{Currency: cur, What: mc.table + "." + mc.amount,
				Postgres: sums[cur][0].StringFixed(2), Warehouse: sums[cur][1].StringFixed(2)})
		}
	}
	return rep
}
