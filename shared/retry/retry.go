// Package retry says whether a failed operation is worth trying again, and how long to wait
// between tries.
//
// The package that knows why an operation failed decides: it wraps the error with Permanent
// (trying again cannot mend it: bad input, a missing object) or gives its own error type a
// Permanent() bool method. Callers decide with IsPermanent, never on an error's text. Every
// other error is transient (it may pass: the network, a busy warehouse): retrying something
// that cannot succeed costs time, dropping something that could have succeeded loses it.
package retry

import (
	"context"
	"errors"
	"time"
)

// PermanentError is a failure that trying again cannot mend. Its contract: the same input gives
// the same failure, so the caller sets the input aside (a DLQ, a failure destination, a
// reported error) instead of repeating it.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent; nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is permanent: its chain holds a PermanentError or an error
// whose Permanent method says so (the outermost one decides). Context cancellation and deadlines are never permanent (the operation did
// not fail on its input), nor is an error joined from several failures unless each of them is
// permanent, since one transient part is worth the retry.
func IsPermanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return permanent(err)
}

func permanent(err error) bool {
	switch e := err.(type) {
	case *PermanentError:
		return true
	case interface{ Permanent() bool }:
		return e.Permanent()
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		for _, inner := range errs {
			if inner != nil && !permanent(inner) {
				return false
			}
		}
		return len(errs) > 0
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return permanent(inner)
		}
	}
	return false
}

// Backoff is an exponential wait: First, then twice the last, at most Max (0: no cap).
type Backoff struct {
	First, Max time.Duration
	next       time.Duration
}

// Next returns the wait before the next try and doubles the one after.
func (b *Backoff) Next() time.Duration {
	if b.next == 0 {
		b.next = b.First
	}
	d := b.next
	b.next *= 2
	if b.Max > 0 && b.next > b.Max {
		b.next = b.Max
	}
	return d
}

// Reset starts again from First, after a success.
func (b *Backoff) Reset() { b.next = 0 }

// Sleep waits d, or less when ctx is done first, and returns ctx.Err() then.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
