package loader

import (
	"context"
	"fmt"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// RangeLister is an ObjectLister that lists as S3's ListObjectsV2 can: the common prefixes under a
// prefix up to the next "/" (Delimiter), and the objects under a prefix whose keys sort after a
// key (StartAfter).
type RangeLister interface {
	ObjectLister
	ListPrefixes(ctx context.Context, bucket, prefix string) ([]string, error)
	ListObjectsAfter(ctx context.Context, bucket, prefix, startAfter string, fn func(key, etag string) error) error
}

// RecentObjects is the catch-up's listing that follows the change, not the lake: per table under
// bronze/, only the objects whose commit date (bronze.Key's dt=) is at most RecentDays before the
// newest date the load ledger holds of that table (HighWaters), and every object of a table the
// ledger holds nothing of. Bronze keys sort by table, then date: one ListObjectsV2 per table
// starting after "bronze/<table>/dt=<newest - RecentDays>" lists what a crash between an object's
// write and its load can leave, and the objects of the last days before it (the landing's lanes
// and partitions land at their own pace; a batch's date is its first commit's).
//
// What it does not list: an object landed under an older date than that after newer ones were
// loaded (a capture catching up on WAL days old, a late retry of such a batch) whose event was
// lost. Its event loads it when it comes (S3's are at least once); the full listing (CatchUp over
// the whole bucket) finds it otherwise, and runs where correctness needs it: at the stack's
// start (a replaced warehouse, whose ledger is empty, is refilled from the lake; what a crash
// lost the event of) and then every FullCatchUpEvery.
type RecentObjects struct {
	Objects RangeLister
	// HighWaters gives the greatest bronze key the ledger holds of each table, by the table's
	// prefix ("bronze/<table>/").
	HighWaters func(ctx context.Context) (map[string]string, error)
	// Days is how many days before a table's newest loaded date the listing starts (RecentDays
	// when 0).
	Days int
}

// RecentDays is RecentObjects' default: the newest loaded date and the day before it.
const RecentDays = 1

// FullCatchUpEvery is how often the local stack's catch-up lists the whole bucket after its
// start (RecentObjects between): it bounds how long an object whose event was lost and that
// landed under an old date waits for its load.
const FullCatchUpEvery = time.Hour

// ListObjects implements ObjectLister: prefix must be "bronze/" (the catch-up's).
func (r RecentObjects) ListObjects(ctx context.Context, bucket, prefix string, fn func(key, etag string) error) error {
	if prefix != bronzePrefix {
		return fmt.Errorf("recent objects: prefix %q, only %q is listed by table", prefix, bronzePrefix)
	}
	marks, err := r.HighWaters(ctx)
	if err != nil {
		return fmt.Errorf("recent objects: the ledger's newest keys: %w", err)
	}
	tables, err := r.Objects.ListPrefixes(ctx, bucket, prefix)
	if err != nil {
		return err
	}
	days := r.Days
	if days == 0 {
		days = RecentDays
	}
	for _, t := range tables {
		if err := r.Objects.ListObjectsAfter(ctx, bucket, t, startAfter(t, marks[t], days), fn); err != nil {
			return err
		}
	}
	return nil
}

const bronzePrefix = "bronze/"

// startAfter is where the listing of tablePrefix starts: after dt=<newest - days>, the date of
// newest (a bronze key of the table, "" for none: from the start) less days.
func startAfter(tablePrefix, newest string, days int) string {
	k, err := bronze.ParseKey(newest)
	if err != nil {
		return "" // none loaded, or not a key the loader would load: list it all
	}
	d, err := time.Parse(time.DateOnly, k.Date)
	if err != nil {
		return ""
	}
	return tablePrefix + "dt=" + d.AddDate(0, 0, -days).Format(time.DateOnly)
}
