package bronze

import (
	"testing"
	"time"
)

func TestObjectKeyRoundTrip(t *testing.T) {
	commit := time.Date(2026, 11, 25, 23, 59, 59, 0, time.FixedZone("X", -3600))
	key := ObjectKey("accounts", SourceID("arn:aws:kafka:eu-west-1:1:cluster/c/u"), "fin.public.accounts", 0, 10, 99, commit)
	want := "bronze/accounts/dt=2026-11-26/fin.public.accounts-0-10-99-" + SourceID("arn:aws:kafka:eu-west-1:1:cluster/c/u") + ".parquet"
	if key != want {
		t.Fatalf("ObjectKey = %q, want %q", key, want)
	}
	if table, ok := ParseKey(key); !ok || table != "accounts" {
		t.Fatalf("ParseKey(%q) = %q, %v", key, table, ok)
	}
}

func TestParseKeyRejects(t *testing.T) {
	for _, k := range []string{
		"dlq/fin.public.accounts/0-5.json",
		"bronze/accounts/x.parquet",
		"bronze//dt=2026-01-01/a.parquet",
		"bronze/accounts/dt=2026-01-01/a.json",
		"other/accounts/dt=2026-01-01/a.parquet",
	} {
		if table, ok := ParseKey(k); ok {
			t.Errorf("ParseKey(%q) = %q, true; want not a bronze key", k, table)
		}
	}
}

func TestSourceIDIsStableAndDistinct(t *testing.T) {
	a, b := SourceID("arn:aws:kafka:x:1:cluster/a/1"), SourceID("arn:aws:kafka:x:1:cluster/b/2")
	if a != SourceID("arn:aws:kafka:x:1:cluster/a/1") || a == b || len(a) != 8 {
		t.Fatalf("SourceID: %q, %q", a, b)
	}
}
