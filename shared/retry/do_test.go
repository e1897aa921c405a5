package retry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// script is an operation that fails with its errors in turn, then succeeds; errHang waits until
// the try's context ends, as a peer that never answers (at most hangFor: a try left unbounded
// fails the test instead of hanging it).
type script struct {
	errs  []error
	calls int
	// bounded counts the tries that had a deadline of their own.
	bounded int
}

var errHang = errors.New("hang")

const hangFor = 2 * time.Second

func (s *script) fn(ctx context.Context) error {
	s.calls++
	if _, ok := ctx.Deadline(); ok {
		s.bounded++
	}
	if s.calls > len(s.errs) {
		return nil
	}
	if err := s.errs[s.calls-1]; err != errHang {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(hangFor):
		return errors.New("the try had no bound")
	}
}

func TestDo(t *testing.T) {
	net := errors.New("connection reset")
	fast := retry.Backoff{First: time.Millisecond}
	for _, tc := range []struct {
		name      string
		policy    retry.Policy
		errs      []error
		cancel    bool          // the caller's context ends during the first backoff (an hour)
		deadline  time.Duration // of the caller's context; 0: none
		wantCalls int
		wantErr   string // "" when Do succeeds
		wantIs    []error
	}{
		{name: "succeeds at once", policy: retry.Policy{Attempts: 3, Backoff: fast}, wantCalls: 1},
		{name: "succeeds on the last try", policy: retry.Policy{Attempts: 3, Backoff: fast}, errs: []error{net, net}, wantCalls: 3},
		{name: "attempts exhausted", policy: retry.Policy{Attempts: 3, Backoff: fast}, errs: []error{net, net, net, net},
			wantCalls: 3, wantErr: "connection reset (3 attempts)", wantIs: []error{net}},
		{name: "permanent error tried once", policy: retry.Policy{Attempts: 3, Backoff: fast},
			errs: []error{retry.Permanent(net)}, wantCalls: 1, wantErr: "connection reset", wantIs: []error{net}},
		{name: "no limit but the context", policy: retry.Policy{Backoff: fast}, errs: []error{net, net, net, net, net}, wantCalls: 6},
		{name: "context cancelled during backoff", policy: retry.Policy{Attempts: 3, Backoff: retry.Backoff{First: time.Hour}},
			errs: []error{net}, cancel: true, wantCalls: 1, wantErr: "connection reset", wantIs: []error{context.Canceled, net}},
		{name: "each try bounded", policy: retry.Policy{Attempts: 2, Backoff: fast, Timeout: 5 * time.Millisecond},
			errs: []error{errHang, errHang}, wantCalls: 2, wantErr: "context deadline exceeded (2 attempts of at most 5ms each)",
			wantIs: []error{context.DeadlineExceeded}},
		{name: "a hung try is tried again", policy: retry.Policy{Attempts: 2, Backoff: fast, Timeout: 5 * time.Millisecond},
			errs: []error{errHang}, wantCalls: 2},
		{name: "Again refuses", policy: retry.Policy{Attempts: 3, Backoff: fast,
			Again: func(int, time.Duration, error) bool { return false }}, errs: []error{net}, wantCalls: 1, wantErr: "connection reset"},
		{name: "Again retries a permanent error", policy: retry.Policy{Attempts: 2, Backoff: fast,
			Again: func(int, time.Duration, error) bool { return true }}, errs: []error{retry.Permanent(net)}, wantCalls: 2},
		{name: "a wait past the deadline is not begun", policy: retry.Policy{Attempts: 3, Backoff: retry.Backoff{First: time.Minute}},
			errs: []error{net}, deadline: 30 * time.Second, wantCalls: 1, wantErr: "connection reset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.deadline > 0 {
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			if tc.cancel {
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			s := &script{errs: tc.errs}
			type result struct {
				tries int
				err   error
			}
			done := make(chan result, 1)
			go func() {
				n, err := retry.Tries(ctx, tc.policy, s.fn)
				done <- result{n, err}
			}()
			var err error
			select {
			case r := <-done:
				err = r.err
				if r.tries != tc.wantCalls {
					t.Errorf("Tries says %d tries, want %d", r.tries, tc.wantCalls)
				}
			case <-time.After(hangFor):
				t.Fatalf("Do has not returned after %s: it waited past a refusal, a deadline or a cancelled context", hangFor)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Do = %v, want %q", err, tc.wantErr)
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("Do = %v, want %v in its chain", err, target)
				}
			}
			if s.calls != tc.wantCalls {
				t.Errorf("%d tries, want %d", s.calls, tc.wantCalls)
			}
			if tc.policy.Timeout > 0 && s.bounded != s.calls {
				t.Errorf("%d of %d tries had a deadline of their own", s.bounded, s.calls)
			}
		})
	}
}

// The permanence of the last error survives Do's wrapping, so the caller still classifies it.
func TestDoKeepsTheClassification(t *testing.T) {
	bad := retry.Permanent(errors.New("bad input"))
	err := retry.Do(context.Background(), retry.Policy{Attempts: 2, Backoff: retry.Backoff{First: time.Millisecond},
		Again: func(int, time.Duration, error) bool { return true }}, func(context.Context) error { return bad })
	if !retry.IsPermanent(err) || !strings.Contains(err.Error(), "(2 attempts)") {
		t.Errorf("Do = %v (permanent %v), want the permanent error after 2 attempts", err, retry.IsPermanent(err))
	}
}
