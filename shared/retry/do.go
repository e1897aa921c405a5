package retry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Policy says how Do tries an operation again.
type Policy struct {
	// Attempts is the number of tries in all; 0 or less tries until ctx ends or Again says no.
	Attempts int
	// Backoff is the wait before each next try; each Do starts from its First.
	Backoff Backoff
	// Timeout bounds each try (0: only ctx does), so that a call hung on a dead peer is given up
	// and tried again instead of holding its caller for good.
	Timeout time.Duration
	// Again decides whether a try that failed with err is tried again after wait, and is where
	// the caller logs it; attempt counts the tries made. nil: unless err is permanent.
	Again func(attempt int, wait time.Duration, err error) bool
}

// Do runs fn until it succeeds, and tries it again after a failure while the policy allows. It
// stops without waiting when a wait and another try as long as the last would end past ctx's
// deadline: the caller's own retry (an invocation's) does better than a try cut off. Its error
// is fn's last, with the number of tries when there were several; when ctx ended, ctx's error is
// in the chain too, so that a caller stopping is told from a failure.
func Do(ctx context.Context, p Policy, fn func(context.Context) error) error {
	_, err := Tries(ctx, p, fn)
	return err
}

// Tries is Do that also says how many tries it made (one at least), for a caller that reports
// them beside the outcome.
func Tries(ctx context.Context, p Policy, fn func(context.Context) error) (int, error) {
	again := p.Again
	if again == nil {
		again = func(_ int, _ time.Duration, err error) bool { return !IsPermanent(err) }
	}
	backoff := p.Backoff
	backoff.Reset()
	for attempt := 1; ; attempt++ {
		began := time.Now()
		err := try(ctx, p.Timeout, fn)
		switch {
		case err == nil:
			return attempt, nil
		case ctx.Err() != nil:
			return attempt, ended(ctx, p.tried(err, attempt))
		case p.Attempts > 0 && attempt >= p.Attempts:
			return attempt, p.tried(err, attempt)
		}
		wait := backoff.Next()
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait+time.Since(began) || !again(attempt, wait, err) {
			return attempt, p.tried(err, attempt)
		}
		if Sleep(ctx, wait) != nil {
			return attempt, ended(ctx, p.tried(err, attempt))
		}
	}
}

func try(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	if timeout <= 0 {
		return fn(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return fn(ctx)
}

// tried wraps err with how many tries it took, when there were several.
func (p Policy) tried(err error, attempts int) error {
	switch {
	case attempts == 1:
		return err
	case p.Timeout > 0:
		return fmt.Errorf("%w (%d attempts of at most %s each)", err, attempts, p.Timeout)
	default:
		return fmt.Errorf("%w (%d attempts)", err, attempts)
	}
}

// ended puts ctx's error into err's chain unless it is there already.
func ended(ctx context.Context, err error) error {
	if errors.Is(err, ctx.Err()) {
		return err
	}
	return errors.Join(ctx.Err(), err)
}
