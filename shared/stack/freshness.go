package stack

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/reconcile"
)

// freshnessChart is the console's commit-to-RAW chart: p50 and p95 per minute over the last hour.
// A minute's point changes only while loads stamped in it can still commit, and a load stamps its
// rows with its transaction's start and commits within seconds, so each gather after the first
// reads the last freshnessRecent minutes of RAW, not the hour: read whole every 3 s, the hour
// (1.8 million rows at 500 tx/s) cost more the longer the stack ran. The first gather reads the
// hour. Only the status's goroutine uses it.
type freshnessChart struct {
	points map[time.Time]console.FreshnessPoint // by minute; nil before the first read
}

// freshnessRecent is how far back each gather after the first reads again.
const freshnessRecent = 5 * time.Minute

// freshnessHour is how much the chart shows.
const freshnessHour = 60 * time.Minute

// update reads what changed since the last gather (the hour on the first) with query and returns
// the chart as of now, oldest minute first.
func (f *freshnessChart) update(ctx context.Context, query func(context.Context, string) ([][]string, error), now time.Time) ([]console.FreshnessPoint, error) {
	from := "now() - INTERVAL 60 MINUTE"
	var since time.Time
	if f.points != nil {
		since = now.Truncate(time.Minute).Add(-freshnessRecent)
		from = reconcile.StampSQL(since.UnixMicro())
	}
	rows, err := query(ctx, freshnessSQL(from))
	if err != nil {
		return nil, err
	}
	if f.points == nil {
		f.points = map[time.Time]console.FreshnessPoint{}
	}
	// The minutes read again are replaced whole; older ones stay as read; past the hour they go.
	maps.DeleteFunc(f.points, func(m time.Time, _ console.FreshnessPoint) bool {
		return !m.Before(since) || !m.Add(time.Minute).After(now.Add(-freshnessHour))
	})
	for _, r := range rows {
		ms, _ := strconv.ParseInt(r[0], 10, 64)
		p50, _ := strconv.ParseFloat(r[1], 64)
		p95, _ := strconv.ParseFloat(r[2], 64)
		n, _ := strconv.ParseInt(r[3], 10, 64)
		m := time.UnixMilli(ms)
		f.points[m] = console.FreshnessPoint{Minute: m, P50: p50, P95: p95, Rows: n}
	}
	out := slices.Collect(maps.Values(f.points))
	slices.SortFunc(out, func(a, b console.FreshnessPoint) int { return a.Minute.Compare(b.Minute) })
	return out, nil
}

// freshnessSQL is commit-to-RAW latency per minute of the streamed changes loaded after from
// (snapshot reads have old commit times by nature).
func freshnessSQL(from string) string {
	var parts []string
	for _, t := range capturedTables {
		parts = append(parts, fmt.Sprintf(`SELECT _loaded_at, (epoch_us(_loaded_at) - commit_ts_us) / 1e6 AS lag FROM raw.%s
			WHERE _loaded_at > %s AND op <> 'r'`, t, from))
	}
	return `SELECT epoch_ms(date_trunc('minute', _loaded_at)), quantile_cont(lag, 0.5), quantile_cont(lag, 0.95), count(*)
		FROM (` + strings.Join(parts, " UNION ALL ") + `) GROUP BY 1 ORDER BY 1`
}
