package loader_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze/bronzetest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
)

// counted counts the objects a RangeLister gives: what a catch-up pass costs in S3.
type counted struct {
	loader.RangeLister
	listed int
}

func (c *counted) ListObjects(ctx context.Context, bucket, prefix string, fn func(key, etag string) error) error {
	return c.ListObjectsAfter(ctx, bucket, prefix, "", fn)
}

func (c *counted) ListObjectsAfter(ctx context.Context, bucket, prefix, after string, fn func(key, etag string) error) error {
	return c.RangeLister.ListObjectsAfter(ctx, bucket, prefix, after, func(key, etag string) error {
		c.listed++
		return fn(key, etag)
	})
}

// putAt writes n records of table from offset first as the object a landing makes of a batch
// whose first event committed daysBefore days before bronzetest.Commit, and returns its key.
func (s *stack) putAt(t *testing.T, table string, first int64, n, daysBefore int) string {
	t.Helper()
	key := bronzetest.KeyOn(table, first, first+int64(n)-1, bronzetest.Commit.AddDate(0, 0, -daysBefore))
	b, err := bronzetest.Encode(bronzetest.Records(table, first, n, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := bronzetest.PutBytes(s.root, bucket, key, b); err != nil {
		t.Fatal(err)
	}
	return key
}

// The catch-up between full listings lists, per table, only the objects of its newest loaded
// days. An object whose event was lost and whose key sorts below the newest loaded one (a late
// retry of an earlier batch of the same day: offset 10 sorts before offset 100) is within them and
// loaded; so is a table with nothing loaded yet. One landed under an older date is left to its
// event or the next full listing, which loads it.
func TestRecentCatchUpLoadsWhatLandedBelowTheNewestKey(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	for i, days := range []int{5, 4, 3, 2, 0} {
		s.putAt(t, "accounts", int64(100*(i+1)), 10, days) // loaded in order: the last is dt=D, offset 500
	}
	if err := s.h.CatchUp(ctx, bucket, loader.DirObjects(s.root)); err != nil {
		t.Fatal(err)
	}
	marks, err := s.wh.HighWaters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	newest := marks["bronze/accounts/"]
	late := s.putAt(t, "accounts", 10, 10, 0) // a late retry: same day, below the newest key
	if late >= newest {
		t.Fatalf("the late key %s does not sort below the newest %s: the test tests nothing", late, newest)
	}
	s.putAt(t, "accounts", 40, 10, 1) // the day before: still listed
	old := s.putAt(t, "accounts", 70, 10, 4)
	s.putAt(t, "customers", 0, 7, 9) // a table with nothing loaded: listed whole

	recent := &counted{RangeLister: loader.DirObjects(s.root)}
	if err := s.h.CatchUp(ctx, bucket, loader.RecentObjects{Objects: recent, HighWaters: s.wh.HighWaters}); err != nil {
		t.Fatal(err)
	}
	if got := s.count(t, "accounts") + "," + s.count(t, "customers"); got != "70,7" {
		t.Fatalf("after the recent catch-up: accounts,customers rows = %s, want 70,7 (5 objects, the late one, the day before's; the customers')", got)
	}
	// Listed: accounts of dt=D-1 and dt=D (the newest, the late one, the day before's), customers'.
	if recent.listed != 4 {
		t.Errorf("the recent catch-up listed %d objects, want 4 of the lake's 9", recent.listed)
	}
	if loaded := s.query(t, fmt.Sprintf("SELECT count(*) FROM raw._load_ledger WHERE object_key = '%s'", old))[0]; loaded != "0" {
		t.Fatalf("%s, under a date older than the recent days, was loaded by the recent catch-up: it listed more than it should", old)
	}
	if err := s.h.CatchUp(ctx, bucket, loader.DirObjects(s.root)); err != nil {
		t.Fatal(err)
	}
	if got := s.count(t, "accounts"); got != "80" {
		t.Fatalf("after the full catch-up: accounts rows = %s, want 80", got)
	}
}

// memLake is a bucket in memory with S3's listing semantics: keys in byte order, StartAfter
// exclusive, Delimiter "/" common prefixes.
type memLake struct{ keys []string }

func (m *memLake) ListObjects(ctx context.Context, bucket, prefix string, fn func(key, etag string) error) error {
	return m.ListObjectsAfter(ctx, bucket, prefix, "", fn)
}

func (m *memLake) ListObjectsAfter(_ context.Context, _, prefix, after string, fn func(key, etag string) error) error {
	for i := sort.SearchStrings(m.keys, max(prefix, after)); i < len(m.keys) && strings.HasPrefix(m.keys[i], prefix); i++ {
		if m.keys[i] == after {
			continue
		}
		if err := fn(m.keys[i], "etag"); err != nil {
			return err
		}
	}
	return nil
}

func (m *memLake) ListPrefixes(_ context.Context, _, prefix string) ([]string, error) {
	var out []string
	for _, k := range m.keys {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			if p, _, ok := strings.Cut(rest, "/"); ok && (len(out) == 0 || out[len(out)-1] != prefix+p+"/") {
				out = append(out, prefix+p+"/")
			}
		}
	}
	return out, nil
}

// The catch-up's listing cost against the lake's size: objects listed per pass by the full
// listing and by RecentObjects, on lakes of 1,000 and 10,000 objects landed at the same pace (3
// tables, 100 objects a table a day), all loaded. The recent pass lists the newest two days
// whatever the lake holds; the full one, the lake. Printed for docs/benchmarks.md.
func TestRecentCatchUpListsTheChangeNotTheLake(t *testing.T) {
	const perTableDay = 100
	tables := []string{"accounts", "customers", "transactions"}
	day := bronzetest.Commit
	for _, size := range []int{1_000, 10_000} {
		lake := &memLake{}
		marks := map[string]string{}
		for i := range size {
			table := tables[i%len(tables)]
			n := int64(i / len(tables))
			key := bronzetest.KeyOn(table, 10*n, 10*n+9, day.AddDate(0, 0, -int(n)/perTableDay))
			lake.keys = append(lake.keys, key)
			if p := "bronze/" + table + "/"; key > marks[p] {
				marks[p] = key
			}
		}
		slices.Sort(lake.keys)
		count := func(l loader.ObjectLister) int {
			n := 0
			if err := l.ListObjects(context.Background(), bucket, "bronze/", func(string, string) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			return n
		}
		full := count(lake)
		began := time.Now()
		recent := count(loader.RecentObjects{Objects: lake, HighWaters: func(context.Context) (map[string]string, error) { return marks, nil }})
		took := time.Since(began)
		t.Logf("lake of %d objects: a full catch-up lists %d, a recent one %d (%.3fx; listing in memory %s)", size, full, recent, float64(recent)/float64(full), took.Round(time.Microsecond))
		if full != size {
			t.Fatalf("the full listing gave %d of %d objects", full, size)
		}
		if want := min(size, 2*perTableDay*len(tables)); recent > want {
			t.Errorf("lake of %d: the recent catch-up listed %d objects, more than two days' %d", size, recent, want)
		}
	}
}
