package duckdb

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssAnonKB is this process's anonymous resident memory (Go's heap, glibc's and DuckDB's).
func rssAnonKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "RssAnon:" {
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	t.Skip("no RssAnon in /proc/self/status")
	return 0
}

// TestQueryPeakGoesBackToTheOS: what a query's hash table held goes back to the OS within
// seconds of its end, though the stack's DuckDB then runs nothing. DuckDB's allocator, jemalloc,
// purges freed pages only when a thread allocates again, or after a task that peaked above
// allocator_flush_threshold (128 MiB); without its background thread three aggregates of 400,000
// groups left 40-50 MB resident for good.
func TestQueryPeakGoesBackToTheOS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("resident memory, read from /proc")
	}
	ctx := context.Background()
	w, err := Open(ctx, filepath.Join(t.TempDir(), "raw_store.duckdb"), nil, WithThreads(2), WithMemoryLimit("512MB"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const agg = `SELECT sum(length(m)) FROM (SELECT k, max(s) AS m FROM (
		SELECT (random() * 1e9)::BIGINT::VARCHAR AS k, repeat('x', 300) || i::VARCHAR AS s FROM range(400000) t(i)) GROUP BY k)`
	base := rssAnonKB(t)
	peak := 0
	for range 3 {
		var n int64
		if err := w.db.QueryRowContext(ctx, agg).Scan(&n); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, rssAnonKB(t))
	}
	if peak < base+64<<10 {
		t.Fatalf("the queries held at most %d KB, %d before them: they no longer show what the test is about", peak, base)
	}
	var after int
	for range 50 {
		if after = rssAnonKB(t); after < base+24<<10 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("anonymous resident memory: %d KB before the queries, %d at their peak, %d after", base, peak, after)
	if after >= base+24<<10 {
		t.Fatalf("10 s after the queries the process holds %d KB anonymous resident, %d before them: DuckDB kept their freed memory", after, base)
	}
}
