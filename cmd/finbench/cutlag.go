package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// cutTables are the RAW tables a posting's transaction reaches gold through: its row, its
// accounts' balance updates and its END on the metadata topic. The cut passes it only once
// all three are loaded (docs/dbt.md, "Gold is a consistent cut").
var cutTables = []struct{ name, where string }{
	{"transactions", "true"},
	{"accounts", "true"},
	{"transaction_metadata", "op = 'END'"},
}

// cutBuild is one build of the run: when it asked for its turn (its RAW snapshot follows), and
// the cut it published.
type cutBuild struct {
	start, end time.Time
	sel        string
	cut        time.Time // the cut's commit time; zero when it published none
	loaded     []time.Time
}

// printCutLag prints, build by build, the commit time of the cut each published beside the newest
// commit each RAW table had loaded when it started: a build whose cut stayed behind all three
// (marked "held") is one that could have published more (the snapshot it read comes after its
// start, so a cut may pass these by what loaded in between, never fall short of them), and the
// table furthest behind is what held a cut that did not move. It reads RAW through the stack's /sql once, after the run.
func (b *freshnessBench) printCutLag(ctx context.Context, runs []console.DbtRun, start time.Time) error {
	var builds []cutBuild
	for _, r := range runs {
		dbtStart := r.At.Add(-time.Duration(r.Seconds * float64(time.Second)))
		c := cutBuild{start: dbtStart.Add(-time.Duration(r.TurnSeconds * float64(time.Second))), end: r.At, sel: r.Select}
		if !c.start.After(start) {
			continue
		}
		if r.Cut != nil && r.Cut.CommitTime != nil {
			c.cut = *r.Cut.CommitTime
		}
		builds = append(builds, c)
	}
	if len(builds) == 0 {
		return nil
	}
	slices.SortFunc(builds, func(a, b cutBuild) int { return a.start.Compare(b.start) })
	if err := b.loadedAt(ctx, builds); err != nil {
		return fmt.Errorf("RAW's newest commits at each build's start: %w", err)
	}
	fmt.Printf("    the cut build by build (its commit time; the newest commit each RAW table held when the build asked for its turn, before its snapshot of RAW: %s):\n", tableNames())
	for _, c := range builds {
		fmt.Printf("      %s\n", c.line())
	}
	return nil
}

// loadedAt fills each build's loaded: per cutTables, the newest commit RAW had loaded by its start.
func (b *freshnessBench) loadedAt(ctx context.Context, builds []cutBuild) error {
	var values, cols []string
	for i, c := range builds {
		values = append(values, fmt.Sprintf("(%d, TIMESTAMPTZ '%s')", i, c.start.UTC().Format("2006-01-02 15:04:05.999999+00")))
	}
	for _, t := range cutTables {
		cols = append(cols, fmt.Sprintf("(SELECT max(commit_ts_us) FROM raw.%s r WHERE %s AND r._loaded_at <= b.t)", t.name, t.where))
	}
	query := fmt.Sprintf("WITH b(id, t) AS (VALUES %s) SELECT b.id, %s FROM b ORDER BY b.id", strings.Join(values, ", "), strings.Join(cols, ", "))
	rows, err := b.query(ctx, query)
	if err != nil {
		return err
	}
	for _, r := range rows {
		i, err := strconv.Atoi(r[0])
		if err != nil || i < 0 || i >= len(builds) || len(r) != len(cutTables)+1 {
			return fmt.Errorf("unexpected row %q", r)
		}
		for _, v := range r[1:] {
			us, _ := strconv.ParseInt(v, 10, 64) // empty (nothing loaded yet): zero time
			var t time.Time
			if us > 0 {
				t = time.UnixMicro(us)
			}
			builds[i].loaded = append(builds[i].loaded, t)
		}
	}
	return nil
}

// line is one build: start, end, its cut and what RAW held, and how far the cut stayed behind the
// least of the tables (what RAW held whole at most, give or take a transaction in flight).
func (c cutBuild) line() string {
	clock := func(t time.Time) string {
		if t.IsZero() {
			return "none"
		}
		return t.UTC().Format("15:04:05.000")
	}
	var least time.Time
	slowest := 0
	held := make([]string, len(c.loaded))
	for i, t := range c.loaded {
		held[i] = clock(t)
		if i == 0 || t.Before(least) {
			least, slowest = t, i
		}
	}
	mark := ""
	switch lag, behind := least.Sub(c.cut), c.loaded[0].Sub(least); {
	case c.cut.IsZero():
	case lag > time.Second:
		mark = fmt.Sprintf(", held %.2f s behind RAW", lag.Seconds())
	case behind > time.Second:
		// What the freshness figure of RAW watches is raw.transactions alone.
		mark = fmt.Sprintf(", at %s, %.2f s behind transactions", cutTables[slowest].name, behind.Seconds())
	}
	return fmt.Sprintf("build %s-%s (%s): cut %s; RAW %s%s", clock(c.start), clock(c.end), cmp.Or(c.sel, "everything"), clock(c.cut), strings.Join(held, " / "), mark)
}

func tableNames() string {
	names := make([]string, len(cutTables))
	for i, t := range cutTables {
		names[i] = t.name
	}
	return strings.Join(names, " / ")
}

// loadStep is one load of a RAW table: its _loaded_at (the start of its transaction) and the
// newest commit the table held once it committed.
type loadStep struct{ at, newest time.Time }

// loadSteps reads each load of every cutTables table, in cutTables' order.
func (b *freshnessBench) loadSteps(ctx context.Context) ([][]loadStep, error) {
	var out [][]loadStep
	for _, t := range cutTables {
		rows, err := b.query(ctx, fmt.Sprintf("SELECT epoch_us(_loaded_at), max(commit_ts_us) FROM raw.%s WHERE %s GROUP BY 1 ORDER BY 1", t.name, t.where))
		if err != nil {
			return nil, fmt.Errorf("loads of raw.%s: %w", t.name, err)
		}
		var steps []loadStep
		for _, r := range rows {
			at, err1 := strconv.ParseInt(r[0], 10, 64)
			newest, err2 := strconv.ParseInt(r[1], 10, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("loads of raw.%s: row %q", t.name, r)
			}
			s := loadStep{at: time.UnixMicro(at), newest: time.UnixMicro(newest)}
			if n := len(steps); n > 0 && steps[n-1].newest.After(s.newest) {
				s.newest = steps[n-1].newest // what the table held: the newest of every load so far
			}
			steps = append(steps, s)
		}
		out = append(out, steps)
	}
	return out, nil
}

// heldBy is when steps first held commit (zero when none did).
func heldBy(steps []loadStep, commit time.Time) time.Time {
	i, _ := slices.BinarySearchFunc(steps, commit, func(s loadStep, c time.Time) int { return s.newest.Compare(c) })
	if i == len(steps) {
		return time.Time{}
	}
	return steps[i].at
}

// wholeInRaw is raw with each posting's sighting moved to when all of cutTables held its commit,
// if later: when its transaction was whole in RAW, which is what the cut can follow. A posting
// some table never held is left out.
func wholeInRaw(raw *seenSet, ids []uuid.UUID, steps [][]loadStep) *seenSet {
	out := newSeenSet()
	for _, id := range ids {
		r, ok := raw.row(id)
		if !ok {
			continue
		}
		whole := true
		for _, s := range steps {
			at := heldBy(s, r.commit)
			whole = whole && !at.IsZero()
			if at.After(r.seen) {
				r.seen = at
			}
		}
		if whole {
			out.rows[id] = r
		}
	}
	return out
}

// printWholeInRaw prints commit -> whole in RAW, and the postings that waited through a build
// that started once they were whole in RAW and did not publish them: the cut itself held back.
func (b *freshnessBench) printWholeInRaw(ctx context.Context, ids []uuid.UUID, runs []console.DbtRun) error {
	steps, err := b.loadSteps(ctx)
	if err != nil {
		return err
	}
	whole := wholeInRaw(b.raw, ids, steps)
	lat, _, missing := whole.latencies(ids, nil)
	fmt.Printf("    commit -> whole in RAW (%s each holding its commit, by _loaded_at): %s over %d postings (%d not whole)\n",
		tableNames(), summarize(lat), len(lat), missing)
	p := decomposeGold(whole, b.gold, ids, runs)
	held := 0
	for _, n := range p.skippedBuilds {
		if n > 0 {
			held++
		}
	}
	fmt.Printf("      postings that waited through a build that started once they were whole in RAW and did not publish them (the cut held back): %d of %d (%.0f%%), %s\n",
		held, len(p.skippedBuilds), 100*float64(held)/float64(max(1, len(p.skippedBuilds))), summarize(p.skipped))
	return nil
}

// query runs query through the stack's /sql and returns its rows, the header left out.
func (b *freshnessBench) query(ctx context.Context, query string) ([][]string, error) {
	var buf bytes.Buffer
	if err := duckdb.PostQuery(ctx, b.sqlURL, b.token, query, &buf); err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", b.sqlURL, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return rows[1:], nil
}
