package reconcile

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLagLinesCapped: a pass writes out the first LagKept lagging changes and counts the rest, so
// its memory does not follow the pipeline's lag; the counts, the verdict (a lost change still
// wins over any lag) and the keys checked again next pass are those of every change.
func TestLagLinesCapped(t *testing.T) {
	began := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		lagging int
		lost    bool
	}{{1, false}, {LagKept, false}, {LagKept + 1, false}, {3 * LagKept, false}, {3 * LagKept, true}} {
		t.Run(fmt.Sprintf("%d lagging, lost %v", tt.lagging, tt.lost), func(t *testing.T) {
			pg := map[string]row{}
			for i := range tt.lagging {
				k := fmt.Sprintf("c%04d", i)
				pg[k] = cust(k, 1, k+"@example.com")
			}
			var ref *reference
			if tt.lost {
				// zz was delivered before the reference, yet the warehouse lacks it.
				pg["zz"] = cust("zz", 1, "zz@example.com")
				ref = referenceOf(began, 0, map[string]map[string]int64{"customers": {"zz": 1}})
			}
			c := newComparison(ref, judge{})
			var rc versionCursor
			if ref != nil {
				rc, _, _ = ref.open("customers")
			}
			if err := c.compareTable(testTables[0], sorted(pg), sorted(map[string]row{}), rc, nil); err != nil {
				t.Fatal(err)
			}
			rep := c.report()
			rep.Slot = Slot{Name: "fin_capture", Exists: true}
			if len(rep.Lag) != min(tt.lagging, LagKept) || rep.Lagging() != tt.lagging {
				t.Fatalf("%d lag lines, %d lagging; want %d and %d", len(rep.Lag), rep.Lagging(), min(tt.lagging, LagKept), tt.lagging)
			}
			if !strings.HasPrefix(rep.Lag[0], "customers c0000: ") {
				t.Errorf("first lag line %q, want the first key's", rep.Lag[0])
			}
			if want := tt.lagging + len(rep.Lost); len(c.disagree["customers"]) != want {
				t.Errorf("%d keys to check again, want %d", len(c.disagree["customers"]), want)
			}
			verdict, summary := "lag", fmt.Sprintf("%d changes not in the warehouse yet", tt.lagging)
			if tt.lost {
				verdict, summary = "lost", "1 changes LOST"
			}
			if rep.Verdict() != verdict || !strings.Contains(rep.Summary(), summary) || rep.OK() {
				t.Errorf("verdict %s, summary %q, OK %v; want %s, %q", rep.Verdict(), rep.Summary(), rep.OK(), verdict, summary)
			}
			var out bytes.Buffer
			rep.Write(&out)
			want := fmt.Sprintf("lag (not delivered yet) (%d):", tt.lagging)
			if tt.lagging > 20 {
				want = fmt.Sprintf("... and %d more\n", tt.lagging-20)
			}
			if !strings.Contains(out.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, out.String())
			}
		})
	}
}
