package capture

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// scriptedStore is a manifest store whose calls fail as script says, one entry a call (then
// succeed): errHang waits until the call's context ends, as a store that never answers.
type scriptedStore struct {
	script   []error
	calls    atomic.Int32
	deadline atomic.Int32 // calls whose context had a deadline
	written  atomic.Pointer[[]byte]
}

var errHang = errors.New("hang")

func (s *scriptedStore) call(ctx context.Context) error {
	n := int(s.calls.Add(1))
	if _, ok := ctx.Deadline(); ok {
		s.deadline.Add(1)
	}
	if n > len(s.script) || s.script[n-1] == nil {
		return nil
	}
	if s.script[n-1] == errHang {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.script[n-1]
}

func (s *scriptedStore) Read(ctx context.Context, _ string) ([]byte, error) {
	return nil, s.call(ctx)
}

func (s *scriptedStore) Write(ctx context.Context, _ string, body []byte) error {
	err := s.call(ctx)
	if err == nil {
		s.written.Store(&body)
	}
	return err
}

// Each call of the manifest store is bounded and retried: a store that hangs or fails is tried
// again after a backoff, a few times, and then the capture stops with an error naming the
// manifest, instead of waiting for good. Without a bound of their own, the synchronous writes (a
// snapshot recorded, the start's, the way out's) to a store that never answers would hold the
// stream for as long as the capture's context lived.
func TestManifestStoreCallsAreBoundedAndRetried(t *testing.T) {
	defer setStoreCall(100*time.Millisecond, 3, time.Millisecond)()
	broken := errors.New("connection reset by peer")
	tests := []struct {
		name      string
		script    []error
		read      bool // the start's read, not a write
		wantCalls int
		wantErr   string // "" when the call succeeds
	}{
		{name: "a store that hangs once", script: []error{errHang}, wantCalls: 2},
		{name: "a store that fails twice", script: []error{broken, broken}, wantCalls: 3},
		{name: "a store that never answers", script: []error{errHang, errHang, errHang, errHang}, wantCalls: 3,
			wantErr: "write manifest _manifest/capture/fin.json: context deadline exceeded (3 attempts"},
		{name: "a permanent refusal is not retried", script: []error{retry.Permanent(errors.New("access denied"))}, wantCalls: 1,
			wantErr: "access denied"},
		{name: "a read that never answers", read: true, script: []error{errHang, errHang, errHang}, wantCalls: 3,
			wantErr: "read manifest _manifest/capture/fin.json: context deadline exceeded (3 attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &scriptedStore{script: tt.script}
			c := &capturer{cfg: Config{Manifest: store, TopicPrefix: "fin"}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				manifest: &Manifest{Snapshots: map[string]SnapshotRecord{}, Delivered: "0/10"}}
			// Only a bound of its own ends a hung call: the capture's context outlives the test.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			began := time.Now()
			var err error
			if tt.read {
				err = c.loadManifest(ctx, SourceID{})
			} else {
				err = c.saveManifest(ctx)
			}
			took := time.Since(began)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("the store's call ended with %v, want %q", err, tt.wantErr)
			}
			if got := int(store.calls.Load()); got != tt.wantCalls {
				t.Errorf("%d calls of the store, want %d", got, tt.wantCalls)
			}
			if got := store.deadline.Load(); int(got) != tt.wantCalls {
				t.Errorf("%d of the %d calls had a deadline of their own", got, tt.wantCalls)
			}
			if took > 5*time.Second {
				t.Errorf("the calls took %s, want them bounded (at most %d of %s)", took, tt.wantCalls, storeCall.Timeout)
			}
			if !tt.read && tt.wantErr == "" {
				if c.recorded.String() != "0/10" || store.written.Load() == nil {
					t.Errorf("after the retried write the recorded position is %s, want 0/10", c.recorded)
				}
			}
		})
	}
}
