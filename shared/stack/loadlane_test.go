package stack

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// A notification's lane is its object's bronze table as bronze.ParseKey takes it apart; a key
// outside the grammar (the loader refuses it) shares the lane "".
func TestLoadLaneIsTheBronzeTable(t *testing.T) {
	for _, c := range []struct{ key, decoded, want string }{
		{"bronze/transactions/dt=2026-12-06/fin.public.transactions-0-1-2-abcdef01.parquet", "", "transactions"},
		{"bronze%2Faccounts%2Fdt%3D2026-12-06%2Ffin.public.accounts-0-5-9-abcdef01.parquet", "bronze/accounts/dt=2026-12-06/fin.public.accounts-0-5-9-abcdef01.parquet", "accounts"},
		// A snapshot window: its topic ends in snapshot_windows, its "offsets" are LSNs.
		{"bronze/snapshot_windows/dt=2026-12-06/fin.public.items.snapshot_windows-0-24018704-24101376-0a1b2c3d.parquet", "", "snapshot_windows"},
		// A topic holding '-' (Kafka allows it): the four fields after it are taken from the right.
		{"bronze/customers/dt=2026-12-06/my-prefix.public.customers-2-0-0-abcdef01.parquet", "", "customers"},
		// Outside the grammar: no table of its own (the old prefix cut named one for each).
		{"bronze/accounts/dt=2026-12-06/x.parquet", "", ""},
		{"bronze/accounts/readme.txt", "", ""},
		{"bronze/Accounts/dt=2026-12-06/fin.public.Accounts-0-1-2-abcdef01.parquet", "", ""},
		{"bronze/accounts/dt=2026-13-01/fin.public.accounts-0-1-2-abcdef01.parquet", "", ""},
		{"bronze/accounts/dt=2026-12-06/fin.public.customers-0-1-2-abcdef01.parquet", "", ""},
		{"bronze/accounts/dt=2026-12-06/sub/fin.public.accounts-0-1-2-abcdef01.parquet", "", ""},
		{"bronze/accounts/dt=2026-12-06/fin.public.accounts-0-2-1-abcdef01.parquet", "", ""},
		{"bronze/accounts/dt=2026-12-06/fin.public.accounts-0-1-2-ABCDEF01.parquet", "", ""},
		{"dlq/fin.public.accounts/abcdef01-0-7.json", "", ""},
		{"_manifest/capture/fin.json", "", ""},
		{"bronze", "", ""},
		{"", "", ""},
	} {
		ev := events.S3Event{Records: []events.S3EventRecord{{S3: events.S3Entity{Object: events.S3Object{Key: c.key, URLDecodedKey: c.decoded}}}}}
		if got := loadLane(ev); got != c.want {
			t.Errorf("loadLane(%q) = %q, want %q", c.key, got, c.want)
		}
	}
	if got := loadLane(events.S3Event{}); got != "" {
		t.Errorf("loadLane of no record = %q, want \"\"", got)
	}
}
