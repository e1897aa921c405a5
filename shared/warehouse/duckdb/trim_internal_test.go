package duckdb

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// glibcArenasKB is the resident size of glibc's malloc arenas in this process, from its
// mappings as scripts/bench.d/memory.sh reads fin up's: the [heap] (the main arena) and the
// 64 MiB-aligned heaps of the others (a reserved part, ---p, beside the used one), above Go's
// own arenas.
func glibcArenasKB(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	head := regexp.MustCompile(`^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$`)
	type mapping struct {
		lo, hi   uint64
		reserved bool
		kb       int
	}
	var heap int
	blocks := map[uint64][]mapping{}
	var cur *mapping
	isHeap := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := head.FindStringSubmatch(line); m != nil {
			cur, isHeap = nil, false
			lo, _ := strconv.ParseUint(m[1], 16, 64)
			hi, _ := strconv.ParseUint(m[2], 16, 64)
			switch {
			case m[4] != "0":
			case m[5] == "[heap]":
				isHeap = true
			case m[5] == "" && lo >= 0x7E0000000000:
				cur = &mapping{lo: lo, hi: hi, reserved: strings.HasPrefix(m[3], "---")}
			}
			continue
		}
		if !strings.HasPrefix(line, "Rss:") || (cur == nil && !isHeap) {
			continue
		}
		kb, _ := strconv.Atoi(strings.Fields(line)[1])
		if isHeap {
			heap += kb
			continue
		}
		cur.kb = kb
		blocks[cur.lo>>26] = append(blocks[cur.lo>>26], *cur)
	}
	for b, maps := range blocks {
		var size uint64
		lowest, reserved, kb := maps[0].lo, false, 0
		for _, m := range maps {
			size += m.hi - m.lo
			lowest, reserved, kb = min(lowest, m.lo), reserved || m.reserved, kb+m.kb
		}
		if lowest == b<<26 && size == 64<<20 && reserved {
			heap += kb
		}
	}
	return heap
}

// TestSnapshotHandsBackTheCHeap: the C heap that queries freed goes back to the OS at each
// snapshot, also when a query in progress keeps DuckDB from being opened again. Four parses of a
// large statement at once left glibc's arenas holding 30-120 MB resident after they ended; the
// snapshot leaves them near what was held before them.
func TestSnapshotHandsBackTheCHeap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("glibc's arenas, read from /proc")
	}
	ctx := context.Background()
	w, dir := openWithModels(t)
	models := filepath.Join(dir, "warehouse.duckdb")
	vals := make([]string, 20000)
	for i := range vals {
		vals[i] = fmt.Sprintf("(%d, 'v%d')", i, i)
	}
	big := "SELECT count(*) FROM (VALUES " + strings.Join(vals, ",") + ") v(a, b)"
	// A query in progress throughout, so the snapshot cannot drop the instance (and its heap).
	started, finish, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- w.QueryRows(ctx, "SELECT 1", nil, func(*sql.Rows) error { close(started); <-finish; return nil })
	}()
	<-started
	defer func() {
		close(finish)
		if err := <-done; err != nil {
			t.Errorf("the query beside the snapshots: %v", err)
		}
	}()
	base := glibcArenasKB(t)
	for round := range 3 {
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				_, err := w.db.ExecContext(ctx, big)
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		before := glibcArenasKB(t)
		st, err := w.Snapshot(ctx, SnapshotPath(models))
		if err != nil {
			t.Fatal(err)
		}
		after := glibcArenasKB(t)
		t.Logf("round %d: glibc's arenas %d KB resident before the queries, %d after them, %d after the snapshot (reopened %v, trimmed %v in %v)",
			round, base, before, after, st.Reopened, st.Trimmed, st.Trim)
		if st.Reopened {
			t.Fatal("the snapshot opened DuckDB again beside a query")
		}
		if before < base+16<<10 {
			t.Fatalf("the queries left %d KB resident, %d before them: they no longer show what the test is about", before, base)
		}
		if after > base+8<<10 {
			t.Fatalf("after the snapshot glibc's arenas hold %d KB resident, %d before the queries: the freed C heap was kept", after, base)
		}
	}
}
