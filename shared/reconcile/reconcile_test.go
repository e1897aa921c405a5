package reconcile

import (
	"strings"
	"testing"
)

func snap(customers, accounts, transactions map[string]row) Snapshot {
	return Snapshot{"customers": customers, "accounts": accounts, "transactions": transactions}
}

func TestCompare(t *testing.T) {
	acct := func(v int64, bal string) row { return row{version: v, values: []string{bal, "ACTIVE", "USD"}} }
	pg := snap(
		map[string]row{"c1": {1, []string{"a@example.com", "false"}}},
		map[string]row{"a1": acct(3, "12.30"), "a2": acct(1, "0.00")},
		map[string]row{},
	)
	tests := []struct {
		name            string
		wh              Snapshot
		lag, difference string
	}{
		{"agree", snap(
			map[string]row{"c1": {1, []string{"a@example.com", "false"}}},
			map[string]row{"a1": acct(3, "12.30"), "a2": acct(1, "0.00")}, map[string]row{}), "", ""},
		{"older version is lag", snap(
			map[string]row{"c1": {1, []string{"a@example.com", "false"}}},
			map[string]row{"a1": acct(2, "10.00"), "a2": acct(1, "0.00")}, map[string]row{}), "warehouse at version 2, Postgres at 3", ""},
		{"missing row is lag", snap(
			map[string]row{"c1": {1, []string{"a@example.com", "false"}}},
			map[string]row{"a1": acct(3, "12.30")}, map[string]row{}), "a2: in Postgres at version 1", ""},
		{"deleted row still current is lag", snap(
			map[string]row{"c1": {1, []string{"a@example.com", "false"}}, "c9": {1, []string{"x@example.com", "false"}}},
			map[string]row{"a1": acct(3, "12.30"), "a2": acct(1, "0.00")}, map[string]row{}), "c9: deleted in Postgres", ""},
		{"same version, other money", snap(
			map[string]row{"c1": {1, []string{"a@example.com", "false"}}},
			map[string]row{"a1": acct(3, "12.31"), "a2": acct(1, "0.00")}, map[string]row{}), "", `balance is "12.30" in Postgres but "12.31"`},
		{"version from nowhere", snap(
			map[string]row{"c1": {4, []string{"a@example.com", "false"}}},
			map[string]row{"a1": acct(3, "12.30"), "a2": acct(1, "0.00")}, map[string]row{}), "", "never reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := compare(pg, tt.wh)
			lag, diff := strings.Join(rep.Lag, "\n"), strings.Join(rep.Differences, "\n")
			if (tt.lag == "") != (lag == "") || !strings.Contains(lag, tt.lag) {
				t.Errorf("lag %q, want %q", lag, tt.lag)
			}
			if (tt.difference == "") != (diff == "") || !strings.Contains(diff, tt.difference) {
				t.Errorf("differences %q, want %q", diff, tt.difference)
			}
			if rep.OK() != (tt.lag == "" && tt.difference == "") {
				t.Errorf("OK() = %v", rep.OK())
			}
		})
	}
}

func TestCentsAreExact(t *testing.T) {
	for in, want := range map[string]int64{"12.30": 1230, "12.3": 1230, "0.01": 1, "100": 10000, "9999999999999999.99": 999999999999999999} {
		if got := cents(in); got != want {
			t.Errorf("cents(%q) = %d, want %d", in, got, want)
		}
	}
	if formatCents(1230) != "12.30" || formatCents(5) != "0.05" {
		t.Error("formatCents")
	}
}
