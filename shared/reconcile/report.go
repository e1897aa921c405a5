package reconcile

import (
	"fmt"
	"io"
	"time"
)

// Report is the outcome of a comparison.
type Report struct {
	At     time.Time    `json:"at"`
	Tables []TableCount `json:"tables"`
	// Money sums per currency on each side.
	Money []Money `json:"money"`
	// Differences are real disagreements: other values at the same version, or a version
	// Postgres never had.
	Differences []string `json:"differences,omitempty"`
	// Lost are changes the capture delivered (below the slot's confirmed position) that the
	// warehouse lacks a grace period later: nothing will send them again.
	Lost []string `json:"lost,omitempty"`
	// Lag are changes the slot still holds (not yet confirmed): they will come. Only the first
	// LagKept are written out, LagMore counts the rest: the lag follows the load, and a line per
	// lagging key held fin up's memory up with it.
	Lag     []string `json:"lag,omitempty"`
	LagMore int      `json:"lag_more,omitempty"`
	// Slot is the capture's replication slot as this pass saw it; WAL is Postgres's WAL insert
	// position when it read its side.
	Slot Slot   `json:"slot"`
	WAL  string `json:"wal"`
	// Skipped names the captured tables not compared, and why.
	Skipped []string `json:"skipped,omitempty"`
	// LoadDelay is how far behind its commits the warehouse loaded in the last minute; it
	// lengthens the grace.
	LoadDelay time.Duration `json:"load_delay"`
	// Snapshotting says the capture was re-reading tables during this pass.
	Snapshotting bool `json:"snapshotting,omitempty"`
	// Waited is how long Compare let the lag drain (zero for a single pass).
	Waited time.Duration `json:"waited,omitempty"`
	// Partial says the pass compared what changed, what disagreed before and a share of the rest
	// (PassChanged): Tables and Money are then empty.
	Partial bool `json:"partial,omitempty"`
}

// TableCount is one table's rows in Postgres and current rows in the warehouse.
type TableCount struct {
	Table     string `json:"table"`
	Postgres  int    `json:"postgres"`
	Warehouse int    `json:"warehouse"`
}

// Money is one currency's total of one money column (accounts.balance, transactions.amount)
// over current rows, on each side, as exact decimal strings.
type Money struct {
	Currency  string `json:"currency"`
	What      string `json:"what"` // "accounts.balance"
	Postgres  string `json:"postgres"`
	Warehouse string `json:"warehouse"`
}

// LagKept is how many lagging changes a report writes out.
const LagKept = 100

// Lagging is how many changes are not in the warehouse yet, written out or not.
func (r Report) Lagging() int { return len(r.Lag) + r.LagMore }

// OK is true when the two sides agree entirely.
func (r Report) OK() bool { return r.Lagging() == 0 && len(r.Differences) == 0 && len(r.Lost) == 0 }

// Verdict names the state in a word: "agree", "lag", "lost" or "differ" (the worst that applies).
func (r Report) Verdict() string {
	switch {
	case len(r.Differences) > 0:
		return "differ"
	case len(r.Lost) > 0:
		return "lost"
	case r.Lagging() > 0:
		return "lag"
	}
	return "agree"
}

// Remedy is what to do about a lost change.
const Remedy = "run `fin snapshot` (the capture re-reads the tables online and the warehouse takes the current rows); see docs/runbook.md, \"Reconciling\""

// Summary is one line for people: the verdict with its counts and, for lost changes, the remedy.
func (r Report) Summary() string {
	switch r.Verdict() {
	case "differ":
		return fmt.Sprintf("%d differences between Postgres and the warehouse at equal versions (%d lost, %d lagging)", len(r.Differences), len(r.Lost), r.Lagging())
	case "lost":
		return fmt.Sprintf("%d changes LOST: the capture delivered them (slot %s confirmed past them) but the warehouse does not hold them; %s",
			len(r.Lost), r.Slot.Name, Remedy)
	case "lag":
		s := fmt.Sprintf("%d changes not in the warehouse yet, still held by slot %s", r.Lagging(), r.Slot.Name)
		if r.Snapshotting {
			s = fmt.Sprintf("%d changes not in the warehouse yet, held by slot %s or still to be re-read by the capture's running snapshot", r.Lagging(), r.Slot.Name)
		}
		switch {
		case !r.Slot.Exists:
			s = fmt.Sprintf("%d changes not in the warehouse, and no replication slot %s captures them (is the capture running?)", r.Lagging(), r.Slot.Name)
		case r.Waited > 0:
			s += fmt.Sprintf(" after %s (slot confirmed %s, Postgres at %s): if the slot stays behind, the capture is not keeping up, see docs/runbook.md, \"Replication slot lag\"; if it has passed them, give the warehouse a longer --grace",
				r.Waited, r.Slot.Confirmed, r.WAL)
		}
		return s
	}
	return "Postgres and the warehouse agree"
}

// judge is what a pass knows beside the two snapshots.
type judge struct {
	// slotLost: Postgres removed WAL the slot still needed, so nothing it held will come.
	slotLost bool
	// snapshotting: the capture is re-reading tables, so a delivered row the warehouse lacks may
	// still come, as a snapshot read.
	snapshotting bool
}

// present judges a key Postgres holds (a) against the warehouse's current row of it (b, nil when
// it has none). rv is the key's version in the reference, an earlier Postgres snapshot whose every
// version the capture delivered at least a grace before the warehouse was read, when inRef.
func (c *comparison) present(t table, key string, a row, b *row, rv int64, inRef bool) {
	rep, j, ref := &c.rep, c.j, c.ref
	slotLost := j.slotLost
	inW := b != nil
	switch {
	case inW && b.version == a.version:
		for i, c := range t.columns {
			if a.values[i] != b.values[i] {
				rep.Differences = append(rep.Differences, fmt.Sprintf("%s %s version %d: %s is %s in Postgres but %s in the warehouse",
					t.name, key, a.version, c.name, show(a.values[i]), show(b.values[i])))
			}
		}
	case inW && b.version > a.version:
		rep.Differences = append(rep.Differences, fmt.Sprintf("%s %s: the warehouse has version %d, which Postgres (at %d) never reached",
			t.name, key, b.version, a.version))
	default:
		have := "absent from the warehouse"
		if inW {
			have = fmt.Sprintf("the warehouse holds version %d", b.version)
		}
		switch {
		case slotLost:
			rep.Lost = append(rep.Lost, fmt.Sprintf("%s %s: version %d in Postgres, %s, and the slot lost the WAL that held it", t.name, key, a.version, have))
		case inRef && (!inW || b.version < rv) && j.snapshotting:
			c.lag("%s %s: version %d in Postgres, %s; the capture's running snapshot has yet to re-read it", t.name, key, a.version, have)
		case inRef && (!inW || b.version < rv):
			rep.Lost = append(rep.Lost, fmt.Sprintf("%s %s: version %d was committed before %s and delivered by the capture; %s",
				t.name, key, rv, ref.began.UTC().Format(time.RFC3339), have))
		default:
			c.lag("%s %s: version %d in Postgres, %s", t.name, key, a.version, have)
		}
	}
}

// deleted judges a key the warehouse holds current (b) and Postgres does not; state is what the
// reference knew of it.
func (c *comparison) deleted(t table, key string, b row, state refState) {
	rep, j, ref := &c.rep, c.j, c.ref
	switch {
	case j.slotLost:
		rep.Lost = append(rep.Lost, fmt.Sprintf("%s %s: deleted in Postgres, current in the warehouse at version %d, and the slot lost the WAL that held the delete", t.name, key, b.version))
	// Not in the reference snapshot, though the warehouse's version was committed well
	// before it: the delete came before the reference too, and was delivered. A reference that
	// did not compare the key (a pass of what changed) cannot tell.
	case ref != nil && state == refAbsent && time.UnixMicro(b.commitUs).Before(ref.began.Add(-ref.margin)):
		rep.Lost = append(rep.Lost, fmt.Sprintf("%s %s: deleted in Postgres before %s and delivered by the capture; the warehouse still holds version %d",
			t.name, key, ref.began.UTC().Format(time.RFC3339), b.version))
	default:
		c.lag("%s %s: deleted in Postgres, still current in the warehouse at version %d", t.name, key, b.version)
	}
}

func show(v string) string {
	switch v {
	case null:
		return "null"
	case absent:
		return "missing"
	}
	return fmt.Sprintf("%q", v)
}

// Write prints a report for people: counts and money side by side, then what differs, then the
// verdict.
func (r Report) Write(w io.Writer) {
	fmt.Fprintf(w, "%-28s %16s %16s\n", "table", "postgres", "warehouse")
	for _, t := range r.Tables {
		fmt.Fprintf(w, "%-28s %16d %16d\n", t.Table, t.Postgres, t.Warehouse)
	}
	for _, m := range r.Money {
		mark := ""
		if m.Postgres != m.Warehouse {
			mark = "  <>"
		}
		fmt.Fprintf(w, "%-28s %16s %16s%s\n", m.What+" "+m.Currency, m.Postgres, m.Warehouse, mark)
	}
	if r.Slot.Exists {
		fmt.Fprintf(w, "\nslot %s confirmed %s, Postgres at %s", r.Slot.Name, r.Slot.Confirmed, r.WAL)
		if r.Slot.Status != "" {
			fmt.Fprintf(w, " (wal_status %s)", r.Slot.Status)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "\nno replication slot %s\n", r.Slot.Name)
	}
	list := func(title string, lines []string, n int) {
		if n == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s (%d):\n", title, n)
		for i, l := range lines {
			if i == 20 {
				break
			}
			fmt.Fprintln(w, "  "+l)
		}
		if n > 20 {
			fmt.Fprintf(w, "  ... and %d more\n", n-20)
		}
	}
	list("not compared", r.Skipped, len(r.Skipped))
	list("differences", r.Differences, len(r.Differences))
	list("LOST (delivered by the capture, absent from the warehouse)", r.Lost, len(r.Lost))
	list("lag (not delivered yet)", r.Lag, r.Lagging())
	fmt.Fprintf(w, "\n%s: %s.\n", r.Verdict(), r.Summary())
}
