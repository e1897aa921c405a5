//go:build !linux

package stack

import "errors"

// lowerThreadPriority: only Linux gives a thread a priority of its own; elsewhere chores run at
// the stack's.
func lowerThreadPriority(int) {}

func threadNice() (int, error) { return 0, errors.New("thread priorities are Linux's") }
