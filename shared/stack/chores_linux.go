package stack

import "syscall"

// lowerThreadPriority lowers the calling thread's CPU priority by n nice levels, to 19 at most;
// the caller holds the thread (runtime.LockOSThread). On Linux a thread's nice value is its own:
// setpriority of a thread id changes that thread alone. Best effort: a chore that keeps the
// stack's priority still runs.
func lowerThreadPriority(n int) {
	tid := syscall.Gettid()
	// The system call returns 20 - nice (1..40), not the nice value itself.
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err != nil {
		return
	}
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, min(20-raw+n, 19))
}

// threadNice is the calling thread's nice value (tests).
func threadNice() (int, error) {
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	return 20 - raw, err
}
