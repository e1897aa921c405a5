package stack

import (
	"runtime"
	"testing"
)

// A chore runs below dbt's priority, and the thread it ran on takes that priority away with it:
// the goroutine that asked, and what runs after, keep the stack's.
func TestChoreRunsBelowDbt(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base, err := threadNice()
	if err != nil {
		t.Skip(err)
	}
	if base+dbtNice >= 19 {
		t.Skipf("this test runs at nice %d: dbt (+%d) is already at the lowest priority, below which no chore can go", base, dbtNice)
	}
	var got int
	asChore(func() { got, err = threadNice() })
	if err != nil {
		t.Fatal(err)
	}
	if want := min(base+choreNice, 19); got != want {
		t.Errorf("chore ran at nice %d, want %d (the stack runs at %d, dbt at %d)", got, want, base, base+dbtNice)
	}
	if after, _ := threadNice(); after != base {
		t.Errorf("the caller's thread is at nice %d after the chore, want the stack's %d", after, base)
	}
}
