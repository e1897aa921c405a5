package loader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze/bronzetest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/loader"
	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// scripted is a warehouse whose loads fail as a test says, counting what reached it.
type scripted struct {
	loadErrs []error // the error of each Load call in turn; past the end, Load succeeds
	loaded   int     // Loaded calls
	loads    int     // Load calls
}

func (w *scripted) Loaded(ctx context.Context, key, etag string) (bool, error) {
	w.loaded++
	return false, nil
}

func (w *scripted) Load(ctx context.Context, obj warehouse.Object) (warehouse.Result, error) {
	w.loads++
	if w.loads <= len(w.loadErrs) {
		return warehouse.Result{}, w.loadErrs[w.loads-1]
	}
	return warehouse.Result{Rows: 7}, nil
}

type noObjects struct{}

func (noObjects) ReadObject(ctx context.Context, bucket, key string, w io.Writer) (string, error) {
	return "", fmt.Errorf("%s: %w", key, loader.ErrObjectNotFound)
}

// A failure that may pass is tried again, with backoff, then returned, counted and logged with
// its tries; a permanent one is tried once; a key outside the bronze grammar never reaches the warehouse.
func TestRetryOnlyWhatMayPass(t *testing.T) {
	good := bronzetest.KeyAt("accounts", 0, 6)
	network := errors.New("dial tcp: connection reset by peer")
	empty := fmt.Errorf("load %s: %w", good, warehouse.ErrNothingLoaded)
	for _, tc := range []struct {
		name      string
		key       string
		errs      []error
		wantLoads int
		reason    string // "" when the object loads in the end
		wantErr   string
	}{
		{"loads at once", good, nil, 1, "", ""},
		{"network failure, then loads", good, []error{network, network}, 3, "", ""},
		{"network failure every time", good, []error{network, network, network, network}, 3, loader.ReasonWarehouse, "connection reset"},
		{"COPY loads nothing every time", good, []error{empty, empty, empty, empty}, 3, loader.ReasonNothingLoaded, good + ": " + warehouse.ErrNothingLoaded.Error()},
		{"COPY loads nothing once, then loads", good, []error{empty}, 2, "", ""},
		{"load timed out", good, []error{fmt.Errorf("copy: %w", context.DeadlineExceeded)}, 1, loader.ReasonWarehouse, "deadline exceeded"},
		{"bad object", good, []error{fmt.Errorf("x: %w", warehouse.ErrBadObject)}, 1, loader.ReasonBadObject, "not a readable bronze object"},
		{"object gone", good, []error{fmt.Errorf("x: %w", loader.ErrObjectNotFound)}, 1, loader.ReasonMissingObject, "object not found"},
		{"quote and SQL in the key", "bronze/accounts/dt=2026-11-25/x'); DROP TABLE raw.accounts; --.parquet", nil, 0, loader.ReasonBadKey, "file name: "},
		{"backslash in the topic", "bronze/accounts/dt=2026-11-25/fin\\'.accounts-0-0-6-" + bronzetest.Source + ".parquet", nil, 0, loader.ReasonBadKey, "topic: "},
		{"newline in the key", good + "\n", nil, 0, loader.ReasonBadKey, "file name: "},
		{"topic of another table", strings.Replace(good, "fin.public.accounts", "fin.public.customers", 1), nil, 0, loader.ReasonBadKey, "topic: "},
		{"not a SourceID", strings.Replace(good, bronzetest.Source, "test", 1), nil, 0, loader.ReasonBadKey, "source: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wh := &scripted{loadErrs: tc.errs}
			var logs bytes.Buffer
			h := loader.NewHandler(wh, noObjects{}, loader.WithRetry(3, time.Millisecond),
				loader.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			ev := created(tc.key)
			ev.Records[0].S3.Object.ETag = `"0123"`
			start := time.Now()
			err := h.Handle(context.Background(), ev)
			if wh.loads != tc.wantLoads {
				t.Errorf("Load called %d times, want %d", wh.loads, tc.wantLoads)
			}
			if tc.wantLoads == 0 && wh.loaded != 0 {
				t.Errorf("a bad key reached the ledger read (%d calls)", wh.loaded)
			}
			m := h.Metrics()
			if tc.reason == "" {
				if err != nil || m.ObjectsLoaded != 1 || m.FailureCount() != 0 {
					t.Fatalf("err %v, metrics %+v; want loaded, no failure", err, m)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v; want one saying %q", err, tc.wantErr)
			}
			if m.Failures[tc.reason] != 1 || m.FailureCount() != 1 || m.ObjectsLoaded != 0 {
				t.Fatalf("failures %v, loaded %d; want exactly one %s", m.Failures, m.ObjectsLoaded, tc.reason)
			}
			if !strings.Contains(logs.String(), "object not loaded") || !strings.Contains(logs.String(), "reason="+tc.reason) {
				t.Fatalf("log does not name the failed object and its reason:\n%s", logs.String())
			}
			if want := fmt.Sprintf("attempts=%d ", tc.wantLoads); !strings.Contains(logs.String(), want) {
				t.Errorf("log does not say the object was tried %d times (%s):\n%s", tc.wantLoads, want, logs.String())
			}
			if tc.wantLoads > 1 && time.Since(start) < 3*time.Millisecond {
				t.Fatalf("tried %d times in %s: no backoff (1 ms, then 2 ms)", tc.wantLoads, time.Since(start))
			}
		})
	}
}

// A try that would not fit in what is left of the invocation is left to the invocation's retry.
func TestNoRetryPastTheInvocationsDeadline(t *testing.T) {
	wh := &scripted{loadErrs: []error{errors.New("conflict"), errors.New("conflict")}}
	h := loader.NewHandler(wh, noObjects{}, loader.WithRetry(3, time.Minute),
		loader.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := h.Handle(ctx, created(bronzetest.KeyAt("accounts", 0, 6)))
	if err == nil || wh.loads != 1 || h.Metrics().Failures[loader.ReasonWarehouse] != 1 {
		t.Fatalf("err %v after %d loads, failures %v; want the first failure returned at once (a 1-minute wait does not fit in 30 s)",
			err, wh.loads, h.Metrics().Failures)
	}
}

// Each failure is counted under its reason and is permanent or not by its type, whatever its
// text says; the error Handle returns keeps the classification.
func TestFailureClassification(t *testing.T) {
	key := bronzetest.KeyAt("accounts", 0, 6)
	for _, tc := range []struct {
		name      string
		err       error
		reason    string
		permanent bool
	}{
		{"network", errors.New("dial tcp: connection reset by peer"), loader.ReasonWarehouse, false},
		{"text says does not exist", errors.New("table does not exist"), loader.ReasonWarehouse, false},
		{"text says bad object", errors.New("not a readable bronze object"), loader.ReasonWarehouse, false},
		{"deadline", fmt.Errorf("copy: %w", context.DeadlineExceeded), loader.ReasonWarehouse, false},
		{"nothing loaded", fmt.Errorf("load %s: %w", key, warehouse.ErrNothingLoaded), loader.ReasonNothingLoaded, false},
		{"bad object", fmt.Errorf("load %s: %w: %v", key, warehouse.ErrBadObject, "corrupt footer"), loader.ReasonBadObject, true},
		{"unknown table", fmt.Errorf("load %s: %w %q", key, warehouse.ErrUnknownTable, "x"), loader.ReasonUnknownTable, true},
		{"object gone", fmt.Errorf("s3://b/%s: %w", key, loader.ErrObjectNotFound), loader.ReasonMissingObject, true},
		{"bad object read timed out", fmt.Errorf("%w: %w", warehouse.ErrBadObject, context.DeadlineExceeded), loader.ReasonBadObject, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := loader.Reason(tc.err); got != tc.reason {
				t.Errorf("Reason = %q, want %q", got, tc.reason)
			}
			if got := retry.IsPermanent(tc.err); got != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tc.permanent)
			}
			wh := &scripted{loadErrs: []error{tc.err, tc.err, tc.err}}
			h := loader.NewHandler(wh, noObjects{}, loader.WithRetry(3, time.Microsecond),
				loader.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			err := h.Handle(context.Background(), created(key))
			if retry.IsPermanent(err) != tc.permanent {
				t.Errorf("Handle's error %v: permanent %v, want %v", err, retry.IsPermanent(err), tc.permanent)
			}
			wantLoads := 3
			if tc.permanent || errors.Is(tc.err, context.DeadlineExceeded) {
				wantLoads = 1
			}
			if wh.loads != wantLoads {
				t.Errorf("loaded %d times, want %d", wh.loads, wantLoads)
			}
		})
	}
	// A key that is not one the landing writes fails permanently before any load.
	err := loader.NewHandler(&scripted{}, noObjects{}, loader.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))).
		Handle(context.Background(), created("bronze/accounts/x.parquet"))
	if loader.Reason(err) != loader.ReasonBadKey || !retry.IsPermanent(err) {
		t.Errorf("bad key: reason %q, permanent %v; want %q, true (err %v)", loader.Reason(err), retry.IsPermanent(err), loader.ReasonBadKey, err)
	}
}
