package stack

import "runtime"

// choreNice is how far below the stack's own CPU priority its periodic chores run: the
// reconcile pass, the console's status and the loader's catch-up. Lower than dbt (dbtNice): a
// chore is batch work like a build, but nobody waits for it, while gold's freshness waits for the
// build. At the stack's priority a reconcile pass (a DuckDB query over RAW on every core, about
// once a minute at 500 tx/s) took the cores from the niced build beside it, whose every node ran
// 3-8x slower: the builds that made commit -> gold's p95.
const choreNice = 19

// asChore runs fn on an OS thread of its own, choreNice below the process's priority (the lowest
// at most), and returns when fn does. DuckDB runs a query on the thread that asks for it (and its
// own worker threads beside it), so the chore's queries run at the chore's priority too. The
// thread is never handed back to the Go scheduler: it ends with fn's goroutine, taking its
// priority with it, and no other goroutine ever runs on it.
func asChore(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked, see above
		lowerThreadPriority(choreNice)
		fn()
	}()
	<-done
}
