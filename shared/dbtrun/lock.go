package dbtrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// FileLock is a Locker over an advisory lock file (flock), for processes that share the local
// DuckDB warehouse: whoever holds it is the only one with the warehouse file open for writing.
// The loader and dbt must both use the same path (e.g. the warehouse path + ".lock").
type FileLock struct {
	Path string
	// Poll is how often a waiting Acquire retries; 100ms when zero.
	Poll time.Duration
}

// Acquire waits until the lock is free or ctx ends.
func (l FileLock) Acquire(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(l.Path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", l.Path, err)
	}
	poll := l.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", l.Path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", l.Path, ctx.Err())
		case <-time.After(poll):
		}
	}
}
