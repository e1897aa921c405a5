package main

import (
	"errors"
	"slices"
	"testing"
)

func TestSnapshotTables(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want []string // nil: refused as a usage error
	}{
		{"public.accounts", []string{"public.accounts"}},
		{"accounts, customers", []string{"public.accounts", "public.customers"}},
		{"accounts,public.accounts", []string{"public.accounts"}},
		{"public.customers,public.accounts,public.transactions", []string{"public.customers", "public.accounts", "public.transactions"}},
		{"idempotency_keys", nil},
		{"other.accounts", nil},
		{"", nil},
	} {
		got, err := snapshotTables(tc.arg)
		if tc.want == nil {
			if !errors.Is(err, errUsage) {
				t.Errorf("snapshotTables(%q) = %v, %v; want a usage error", tc.arg, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("snapshotTables(%q) = %v, %v; want %v", tc.arg, got, err, tc.want)
		}
	}
}
