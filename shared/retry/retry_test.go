package retry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

type declared struct{ permanent bool }

func (d declared) Error() string   { return "declared" }
func (d declared) Permanent() bool { return d.permanent }

// transientOver declares itself transient although it wraps a permanent error: the outermost
// classification decides.
type transientOver struct{ err error }

func (e transientOver) Error() string   { return "transient: " + e.err.Error() }
func (e transientOver) Unwrap() error   { return e.err }
func (e transientOver) Permanent() bool { return false }

func TestIsPermanent(t *testing.T) {
	bad := retry.Permanent(errors.New("bad input"))
	net := errors.New("connection reset")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"unclassified", net, false},
		{"permanent", bad, true},
		{"permanent, wrapped twice", fmt.Errorf("load k: %w", fmt.Errorf("copy: %w", bad)), true},
		{"sentinel compared after wrapping", fmt.Errorf("x: %w", bad), true},
		{"declared transient outside permanent", fmt.Errorf("%w", transientOver{bad}), false},
		{"deadline", fmt.Errorf("copy: %w", context.DeadlineExceeded), false},
		{"permanent but cancelled", retry.Permanent(fmt.Errorf("x: %w", context.Canceled)), false},
		{"type declares permanent", fmt.Errorf("x: %w", declared{true}), true},
		{"type declares transient", declared{false}, false},
		{"joined, all permanent", errors.Join(bad, retry.Permanent(net)), true},
		{"joined, one transient", errors.Join(bad, net), false},
		{"two %w, both permanent", fmt.Errorf("%w: %w", bad, declared{true}), true},
		{"two %w, one unclassified", fmt.Errorf("%w: %w", bad, net), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retry.IsPermanent(tc.err); got != tc.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if retry.Permanent(nil) != nil {
		t.Error("a nil error must stay nil")
	}
	if !errors.Is(fmt.Errorf("x: %w", bad), bad) {
		t.Error("errors.Is must see through the wrapping")
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name       string
		first, max time.Duration
		want       []time.Duration
	}{
		{"doubles, no cap", 10, 0, []time.Duration{10, 20, 40, 80}},
		{"capped", 10, 25, []time.Duration{10, 20, 25, 25}},
		{"cap below first", 10, 5, []time.Duration{10, 5, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := retry.Backoff{First: tc.first, Max: tc.max}
			for i, want := range tc.want {
				if got := b.Next(); got != want {
					t.Fatalf("wait %d = %v, want %v", i+1, got, want)
				}
			}
			b.Reset()
			if got := b.Next(); got != tc.first {
				t.Errorf("after Reset: %v, want %v", got, tc.first)
			}
		})
	}
}

func TestSleepStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := retry.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a done context = %v, want context.Canceled", err)
	}
	if time.Since(start) > time.Second {
		t.Error("Sleep waited although the context was done")
	}
	if err := retry.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v", err)
	}
}
