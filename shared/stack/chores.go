package stack

import (
	"context"
	"runtime"
)

// choreNice is how far below the stack's own CPU priority its periodic chores run: the
// reconcile pass, the console's status and the catch-up's ledger reads. Lower than dbt
// (dbtNice): a chore is batch work like a build, but nobody waits for it, while gold's freshness
// waits for the build. At the stack's priority a reconcile pass (a DuckDB query over RAW on every
// core, about once a minute at 500 tx/s) took the cores from the niced build beside it, whose
// every node ran 3-8x slower: the builds that made commit -> gold's p95.
const choreNice = 19

// choreThread runs chores on one OS thread of its own, choreNice below the process's priority
// (the lowest at most), one at a time, until ctx ends. DuckDB runs a query on the thread that asks
// for it (beside its own worker threads), so a chore's queries run at the chore's priority too.
//
// The thread lives as long as ctx, and only the chores run on it. A thread that ended after each
// chore (a goroutine that exits locked to its thread ends the thread) killed the dbt worker: its
// parent-death signal (dieWithParent) fires when the thread that started it ends, and the chore's
// goroutine could be given the thread that had started the worker. A locked thread never starts a
// process, and the Go runtime starts no thread from it.
type choreThread struct {
	ctx context.Context
	do  chan func()
}

func newChoreThread(ctx context.Context) *choreThread {
	c := &choreThread{ctx: ctx, do: make(chan func())}
	go func() {
		runtime.LockOSThread() // for good: the thread ends with ctx, never handed back lowered
		lowerThreadPriority(choreNice)
		for {
			select {
			case <-ctx.Done():
				return
			case fn := <-c.do:
				fn()
			}
		}
	}()
	return c
}

// run runs fn on the chores' thread and returns when it has; once ctx has ended, on the caller's.
func (c *choreThread) run(fn func()) {
	done := make(chan struct{})
	select {
	case c.do <- func() { defer close(done); fn() }:
		<-done
	case <-c.ctx.Done():
		fn()
	}
}
