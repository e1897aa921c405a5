package stack

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// A notification's lane is its object's bronze table; anything else shares one lane.
func TestLoadLaneIsTheBronzeTable(t *testing.T) {
	for _, c := range []struct{ key, decoded, want string }{
		{"bronze/transactions/dt=2026-12-06/fin.public.transactions-0-1-2-abcdef01.parquet", "", "transactions"},
		{"bronze%2Faccounts%2Fdt%3D2026-12-06%2Fx.parquet", "bronze/accounts/dt=2026-12-06/x.parquet", "accounts"},
		{"dlq/fin.public.accounts/abcdef01-0-7.json", "", ""},
		{"bronze", "", ""},
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
