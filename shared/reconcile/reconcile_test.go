package reconcile

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// snapshot is one side's current rows by table and key, for tests of the walk.
type snapshot map[string]map[string]row

// rows yields a side's rows of one table in key order, as its query would.
type rows struct {
	keys []string
	m    map[string]row
}

func sorted(m map[string]row) *rows {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return &rows{keys: keys, m: m}
}

func (r *rows) next() (string, row, bool, error) {
	if len(r.keys) == 0 {
		return "", row{}, false, nil
	}
	k := r.keys[0]
	r.keys = r.keys[1:]
	return k, r.m[k], true, nil
}

type versions struct{ r *rows }

func (v versions) next() (string, int64, bool, error) {
	k, r, ok, err := v.r.next()
	return k, r.version, ok, err
}

// referenceOf is an earlier pass that saw these versions.
func referenceOf(began time.Time, margin time.Duration, vs map[string]map[string]int64) *reference {
	return &reference{began: began, margin: margin, open: func(table string) (versionCursor, func(), error) {
		m := map[string]row{}
		for k, v := range vs[table] {
			m[k] = row{version: v}
		}
		return versions{sorted(m)}, func() {}, nil
	}}
}

// classify walks p against w, table by table, as a pass does.
func classify(t *testing.T, tables []table, p, w snapshot, ref *reference, j judge) Report {
	t.Helper()
	c := newComparison(ref, j)
	for _, tb := range tables {
		var rc versionCursor
		if ref != nil {
			rc, _, _ = ref.open(tb.name)
		}
		if err := c.compareTable(tb, sorted(p[tb.name]), sorted(w[tb.name]), rc, nil); err != nil {
			t.Fatal(err)
		}
	}
	return c.report()
}

var testTables = []table{
	{name: "customers", key: "customer_id", columns: []column{{"customer_id", "text"}, {"email", "text"}, {"closed_at", "timestamptz"}, {"version", "text"}}},
	{name: "accounts", key: "account_id", columns: []column{{"account_id", "text"}, {"balance", "numeric"}, {"currency", "text"}, {"version", "text"}}},
}

func cust(id string, v int64, email string) row {
	return row{version: v, values: []string{id, email, null, itoa(v)}}
}

func acct(id string, v int64, bal, cur string) row {
	return row{version: v, values: []string{id, normalize("numeric", bal), cur, itoa(v)}}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestClassify(t *testing.T) {
	began := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	old := began.Add(-time.Hour).UnixMicro()
	recent := began.Add(-time.Second).UnixMicro()
	pg := snapshot{
		"customers": {"c1": cust("c1", 2, "b@example.com")},
		"accounts":  {"a1": acct("a1", 3, "12.30", "EUR")},
	}
	// ref is an earlier snapshot the capture delivered: c1 at version 1, a1 at version 3.
	delivered := referenceOf(began, 10*time.Second, map[string]map[string]int64{
		"customers": {"c1": 1}, "accounts": {"a1": 3}})
	withW := func(c, a map[string]row) snapshot { return snapshot{"customers": c, "accounts": a} }
	agreeC := map[string]row{"c1": cust("c1", 2, "b@example.com")}
	agreeA := map[string]row{"a1": acct("a1", 3, "12.3", "EUR")}
	deleted := func(commit int64) map[string]row {
		r := cust("c9", 1, "gone@example.com")
		r.commitUs = commit
		return map[string]row{"c1": cust("c1", 2, "b@example.com"), "c9": r}
	}
	tests := []struct {
		name    string
		w       snapshot
		ref     *reference
		j       judge
		verdict string
		want    string // in the one line of that verdict
	}{
		{"agree, money by value", withW(agreeC, agreeA), delivered, judge{}, "agree", ""},
		{"no reference yet: a missing row is lag", withW(agreeC, map[string]row{}), nil, judge{}, "lag", "a1: version 3 in Postgres, absent from the warehouse"},
		{"missing, delivered: lost", withW(agreeC, map[string]row{}), delivered, judge{}, "lost", "a1: version 3 was committed before 2026-11-25T12:00:00Z and delivered by the capture; absent from the warehouse"},
		{"stale below the delivered version: lost", withW(agreeC, map[string]row{"a1": acct("a1", 2, "10.00", "EUR")}), delivered, judge{}, "lost", "the warehouse holds version 2"},
		{"stale at the delivered version, newer one not delivered: lag", withW(map[string]row{"c1": cust("c1", 1, "a@example.com")}, agreeA), delivered, judge{}, "lag", "c1: version 2 in Postgres, the warehouse holds version 1"},
		{"inserted after the reference: lag", withW(map[string]row{}, agreeA), referenceOf(began, 0, map[string]map[string]int64{"accounts": {"a1": 3}}), judge{}, "lag", "c1: version 2 in Postgres, absent"},
		{"slot lost its WAL: everything behind is lost", withW(map[string]row{"c1": cust("c1", 1, "a@example.com")}, agreeA), nil, judge{slotLost: true}, "lost", "slot lost the WAL"},
		{"missing, delivered, a snapshot running: lag", withW(agreeC, map[string]row{}), delivered, judge{snapshotting: true}, "lag", "a1: version 3 in Postgres, absent from the warehouse; the capture's running snapshot has yet to re-read it"},
		{"deleted long before the reference, a snapshot running: still lost", withW(deleted(old), agreeA), delivered, judge{snapshotting: true}, "lost", "c9: deleted in Postgres before"},
		{"deleted long before the reference: lost", withW(deleted(old), agreeA), delivered, judge{}, "lost", "c9: deleted in Postgres before 2026-11-25T12:00:00Z"},
		{"deleted, version too close to the reference to tell: lag", withW(deleted(recent), agreeA), delivered, judge{}, "lag", "c9: deleted in Postgres, still current"},
		{"deleted, no reference: lag", withW(deleted(old), agreeA), nil, judge{}, "lag", "c9: deleted in Postgres"},
		{"same version, other money", withW(agreeC, map[string]row{"a1": acct("a1", 3, "12.31", "EUR")}), delivered, judge{}, "differ", `balance is "12.3" in Postgres but "12.31" in the warehouse`},
		{"same version, null against a value", withW(map[string]row{"c1": {version: 2, values: []string{"c1", "b@example.com", "2026-11-25T10:00:00.000000Z", "2"}}}, agreeA), delivered, judge{}, "differ", `closed_at is null in Postgres but "2026-11-25T10:00:00.000000Z"`},
		{"same version, column missing from the row image", withW(map[string]row{"c1": {version: 2, values: []string{"c1", absent, null, "2"}}}, agreeA), delivered, judge{}, "differ", "email is \"b@example.com\" in Postgres but missing"},
		{"a version Postgres never reached", withW(map[string]row{"c1": cust("c1", 4, "b@example.com")}, agreeA), delivered, judge{}, "differ", "never reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := classify(t, testTables, pg, tt.w, tt.ref, tt.j)
			if got := rep.Verdict(); got != tt.verdict {
				t.Fatalf("verdict %q, want %q\nlost %q\nlag %q\ndifferences %q", got, tt.verdict, rep.Lost, rep.Lag, rep.Differences)
			}
			lines := map[string][]string{"lost": rep.Lost, "lag": rep.Lag, "differ": rep.Differences}[tt.verdict]
			if tt.want != "" && !strings.Contains(strings.Join(lines, "\n"), tt.want) {
				t.Errorf("%s lines %q lack %q", tt.verdict, lines, tt.want)
			}
			if rep.OK() != (tt.verdict == "agree") {
				t.Errorf("OK() = %v with verdict %s", rep.OK(), tt.verdict)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	for _, tt := range []struct{ kind, a, b string }{
		{"numeric", "12.30", "12.3"},
		{"numeric", "9999999999999999.99", "9999999999999999.990"},
		{"timestamptz", "2026-11-25T10:00:00.500000Z", "2026-11-25T10:00:00.5Z"},
		{"timestamptz", "2026-11-25T10:00:00Z", "2026-11-25T11:00:00+01:00"},
	} {
		if normalize(tt.kind, tt.a) != normalize(tt.kind, tt.b) {
			t.Errorf("%s %q and %q differ: %q, %q", tt.kind, tt.a, tt.b, normalize(tt.kind, tt.a), normalize(tt.kind, tt.b))
		}
	}
	if normalize("numeric", "0.01") == normalize("numeric", "0.10") {
		t.Error("0.01 and 0.10 compare equal")
	}
	for text, want := range map[string]string{`"a\"b"`: `a"b`, `null`: null, ``: absent, `3`: "3", `true`: "true", `"12.30"`: "12.3"} {
		kind := "text"
		if text == `"12.30"` {
			kind = "numeric"
		}
		if got, err := fromJSON(kind, text); err != nil || got != want {
			t.Errorf("fromJSON(%q) = %q, %v; want %q", text, got, err, want)
		}
	}
}

func TestMoneyPerCurrency(t *testing.T) {
	p := snapshot{"accounts": {"a1": acct("a1", 1, "0.10", "EUR"), "a2": acct("a2", 1, "0.20", "EUR"), "a3": acct("a3", 1, "5.00", "USD")}}
	w := snapshot{"accounts": {"a1": acct("a1", 1, "0.10", "EUR"), "a2": acct("a2", 1, "0.20", "EUR")}}
	got := classify(t, testTables, p, w, nil, judge{}).Money
	want := []Money{{"EUR", "accounts.balance", "0.30", "0.30"}, {"USD", "accounts.balance", "5.00", "0.00"}}
	if len(got) != len(want) {
		t.Fatalf("money %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("money[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestSummary(t *testing.T) {
	slot := Slot{Name: "fin_capture", Exists: true, Confirmed: "0/10"}
	for _, tt := range []struct {
		name string
		rep  Report
		want []string
	}{
		{"agree", Report{Slot: slot}, []string{"agree"}},
		{"lost names the remedy", Report{Slot: slot, Lost: []string{"x"}, Lag: []string{"y"}}, []string{"1 changes LOST", "slot fin_capture confirmed past them", "fin snapshot"}},
		{"lag while waiting", Report{Slot: slot, Lag: []string{"y"}}, []string{"1 changes not in the warehouse yet, still held by slot fin_capture"}},
		{"lag after the wait", Report{Slot: slot, WAL: "0/20", Lag: []string{"y"}, Waited: time.Minute}, []string{"after 1m0s (slot confirmed 0/10, Postgres at 0/20)", "Replication slot lag"}},
		{"lag with no slot", Report{Slot: Slot{Name: "fin_capture"}, Lag: []string{"y"}}, []string{"no replication slot fin_capture"}},
		{"differences first", Report{Slot: slot, Differences: []string{"d"}, Lost: []string{"x"}}, []string{"1 differences", "1 lost"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.rep.Summary()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("summary %q lacks %q", got, w)
				}
			}
		})
	}
}

// listed yields keys in the order given, to feed the walk a side out of order.
type listed []string

func (l *listed) next() (string, row, bool, error) {
	if len(*l) == 0 {
		return "", row{}, false, nil
	}
	k := (*l)[0]
	*l = (*l)[1:]
	return k, cust(k, 1, k+"@example.com"), true, nil
}

// TestWalkRefusesKeysOutOfOrder: the walk pairs keys right only when each side ascends bytewise,
// so a side that does not (another collation, a duplicate key) fails the pass, naming it.
func TestWalkRefusesKeysOutOfOrder(t *testing.T) {
	for _, tt := range []struct {
		name   string
		pg, wh listed
		want   string // in the error; else the verdict
	}{
		{"both ascending", listed{"a", "b", "c"}, listed{"a", "c"}, "lag"},
		{"bytewise, not by locale", listed{"B", "a"}, listed{"B", "a"}, "agree"},
		{"Postgres by locale", listed{"a", "B"}, listed{"B", "a"}, `Postgres customers: key "B" came after "a"`},
		{"warehouse repeats a key", listed{"a", "b"}, listed{"a", "a", "b"}, `warehouse raw.customers: key "a" came after "a"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newComparison(nil, judge{})
			err := c.compareTable(testTables[0], &tt.pg, &tt.wh, nil, nil)
			verdict := tt.want == "lag" || tt.want == "agree"
			switch {
			case verdict && err != nil:
				t.Fatal(err)
			case !verdict && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one with %q", err, tt.want)
			case verdict && c.report().Verdict() != tt.want:
				t.Errorf("verdict %s, want %s: lag %q", c.report().Verdict(), tt.want, c.report().Lag)
			}
		})
	}
}
