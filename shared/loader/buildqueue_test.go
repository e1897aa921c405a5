package loader_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// requests records the build requests sent, failing the first fail sends.
type requests struct {
	mu   sync.Mutex
	fail int
	sent []string
}

func (r *requests) SendMessage(ctx context.Context, body string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("queue unavailable")
	}
	r.sent = append(r.sent, body)
	return nil
}

// After a commit the loader asks for a build of what the tables that got rows feed: once per
// invocation, the tables sorted; a duplicate event asks again (its first invocation may have
// failed before asking); a catch-up asks only for what it loaded itself; a request that cannot be
// sent fails the invocation, so Lambda retries it.
func TestCommittedLoadsRequestBuilds(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "w.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	reqs := &requests{}
	h := loader.NewHandler(wh, loader.DirObjects(s.root), loader.WithBuildRequests(reqs), loader.WithRetry(3, time.Millisecond))
	tx, _ := s.put(t, "transactions", 0, 5, nil)
	acc, _ := s.put(t, "accounts", 0, 3, nil)
	steps := []struct {
		name string
		run  func() error
		want string // the requests sent by the step
		err  string
	}{
		{"two tables in one invocation", func() error { return h.Handle(ctx, created(tx, acc)) }, `{"tables":["accounts","transactions"]}`, ""},
		{"a duplicate event asks again", func() error { return h.Handle(ctx, created(tx)) }, `{"tables":["transactions"]}`, ""},
		{"a catch-up of loaded objects asks nothing", func() error { return h.CatchUp(ctx, bucket, loader.DirObjects(s.root)) }, "", ""},
		{"a catch-up asks for what it loaded", func() error {
			s.put(t, "customers", 0, 2, nil)
			return h.CatchUp(ctx, bucket, loader.DirObjects(s.root))
		}, `{"tables":["customers"]}`, ""},
		// an END alone can complete a transaction, moving gold.cut (docs/dbt.md)
		{"transaction metadata alone asks for the cut", func() error {
			meta, _ := s.put(t, "transaction_metadata", 0, 2, nil)
			return h.Handle(ctx, created(meta))
		}, `{"tables":["transaction_metadata"]}`, ""},
		{"transaction metadata beside a table asks for both", func() error {
			meta, _ := s.put(t, "transaction_metadata", 2, 2, nil)
			cust, _ := s.put(t, "customers", 10, 1, nil)
			return h.Handle(ctx, created(meta, cust))
		}, `{"tables":["customers","transaction_metadata"]}`, ""},
		{"a queue down past the retries fails the invocation", func() error {
			reqs.fail = 3
			return h.Handle(ctx, created(acc))
		}, "", "request a build of"},
		{"one failure is retried", func() error {
			reqs.fail = 1
			return h.Handle(ctx, created(acc))
		}, `{"tables":["accounts"]}`, ""},
	}
	for _, st := range steps {
		before := len(reqs.sent)
		err := st.run()
		if st.err == "" && err != nil || st.err != "" && (err == nil || !strings.Contains(err.Error(), st.err)) {
			t.Fatalf("%s: error %v, want %q", st.name, err, st.err)
		}
		if got := strings.Join(reqs.sent[before:], " "); got != st.want {
			t.Fatalf("%s: sent %q, want %q", st.name, got, st.want)
		}
	}
}
