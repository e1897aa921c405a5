//go:build linux

package stack

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// Chores run below dbt's priority, all on one thread that lives as long as they do: the caller
// keeps the stack's priority, and no thread ends after a chore (one that did killed the dbt
// worker it had started, by the worker's parent-death signal).
func TestChoresRunBelowDbtOnOneThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base, err := threadNice()
	if err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chores := newChoreThread(ctx)
	var nices, tids []int
	for range 3 {
		chores.run(func() {
			n, _ := threadNice()
			nices, tids = append(nices, n), append(tids, syscall.Gettid())
		})
	}
	if tids[0] != tids[1] || tids[1] != tids[2] {
		t.Errorf("chores ran on threads %v, want one thread for all", tids)
	}
	if base+dbtNice >= 19 {
		t.Skipf("this test runs at nice %d: dbt (+%d) is already at the lowest priority, below which no chore can go", base, dbtNice)
	}
	for _, got := range nices {
		if want := min(base+choreNice, 19); got != want {
			t.Errorf("chore ran at nice %d, want %d (the stack runs at %d, dbt at %d)", got, want, base, base+dbtNice)
		}
	}
	if after, _ := threadNice(); after != base {
		t.Errorf("the caller's thread is at nice %d after the chores, want the stack's %d", after, base)
	}
}

// fakeLister lists fixed objects.
type fakeLister [][2]string

func (f fakeLister) ListObjects(_ context.Context, _, _ string, fn func(key, etag string) error) error {
	for _, o := range f {
		if err := fn(o[0], o[1]); err != nil {
			return err
		}
	}
	return nil
}

// The catch-up hands the loader only what the ledger lacks (an unreadable ledger entry counts as
// lacking), and reads the ledger as a chore, below dbt.
func TestCatchUpListsWhatTheLedgerLacks(t *testing.T) {
	base, _ := threadNice()
	ledger := map[string]string{"bronze/a": "1", "bronze/b": "2", "bronze/c": "3"}
	var nices []int
	loaded := func(_ context.Context, key, etag string) (bool, error) {
		n, _ := threadNice()
		nices = append(nices, n)
		if key == "bronze/d" {
			return false, errors.New("ledger unreadable")
		}
		return ledger[key] == etag, nil
	}
	objects := fakeLister{{"bronze/a", `"1"`}, {"bronze/b", `"9"`}, {"bronze/c", "3"}, {"bronze/d", "4"}, {"bronze/e", "5"}}
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := unloadedObjects{objects, loaded, newChoreThread(ctx)}.ListObjects(context.Background(), "lake", "bronze/", func(key, etag string) error {
		got = append(got, key+"="+etag)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := `bronze/b="9" bronze/d=4 bronze/e=5`; strings.Join(got, " ") != want {
		t.Errorf("handed to the loader: %v, want %s (b rewritten, d unknown, e new)", got, want)
	}
	if base+dbtNice < 19 {
		for _, n := range nices {
			if n != min(base+choreNice, 19) {
				t.Fatalf("the ledger was read at nice %d, want the chores' %d", n, min(base+choreNice, 19))
			}
		}
	}
}
