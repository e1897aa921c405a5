package api

import (
	"context"
	"testing"
	"time"
)

// TestLoggedContext: a request's context finds its log record, passes every other key and its
// cancellation on to the context it wraps, as context.WithValue did.
func TestLoggedContext(t *testing.T) {
	type otherKey struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "kept"))
	ctx := &loggedContext{Context: parent, log: requestLog{id: "req-1"}}
	setLogSubject(ctx, "alice")
	child, stop := context.WithTimeout(ctx, time.Hour) // what a handler derives from it
	defer stop()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"request id", requestID(child), "req-1"},
		{"subject", ctx.log.subject, "alice"},
		{"another key", child.Value(otherKey{}), "kept"},
		{"not yet done", child.Err(), nil},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	cancel()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the wrapped context did not reach a context derived from the request's")
	}
}
